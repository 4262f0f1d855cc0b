/* plugins.c - finding and checking compute-backend plugins (shared objects, dlopen).
 *
 * A plugin is trusted code once loaded (its constructors run at dlopen), so only folders the
 * user or the installation names are searched. Everything that can be checked before use is:
 * the file must load, export the entry symbol, return a table of our ABI version and size,
 * with a valid unique name and the required functions. Plugins are loaded RTLD_NODELETE: a
 * library such as oneDNN keeps caches and thread pools that must outlive a dlclose. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute.h"
#include "error.h"
#include "install_dirs.h"

typedef struct plugin_entry {
    char *path;
    char *refused;              /* NULL when usable */
    const aac_backend *be;      /* table (NULL when refused before it was read) */
    void *handle;
} plugin_entry;

struct aac_plugins {
    plugin_entry *e;
    int n, cap;
    char *dirs[64]; /* the folders searched, in order */
    int n_dirs;
};

static int valid_name(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-'))
            return 0;
    return n >= 1 && n <= 31;
}

static plugin_entry *find_usable(const aac_plugins *p, const char *name) {
    for (int i = 0; p && i < p->n; i++)
        if (!p->e[i].refused && p->e[i].be && !strcmp(p->e[i].be->name, name)) return &p->e[i];
    return NULL;
}

static char *xstrdup_printf(const char *fmt, ...) AAC_PRINTF(1, 2);
static char *xstrdup_printf(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return strdup(buf);
}

/* Loads and checks one file; the entry is appended whatever happens. */
static int try_file(aac_plugins *p, const char *path) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->e[i].path, path)) return 1; /* the same file twice in the path */
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 8;
        plugin_entry *e = realloc(p->e, sizeof *e * cap);
        if (!e) return 0;
        p->e = e, p->cap = cap;
    }
    plugin_entry *e = &p->e[p->n];
    memset(e, 0, sizeof *e);
    if (!(e->path = strdup(path))) return 0;
    p->n++;
    dlerror();
    e->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!e->handle) {
        const char *why = dlerror();
        e->refused = xstrdup_printf("cannot be loaded: %s", why ? why : "unknown error");
        return e->refused != NULL;
    }
    aac_backend_entry_fn entry;
    *(void **)&entry = dlsym(e->handle, AAC_BACKEND_ENTRY_SYMBOL);
    if (!entry) {
        e->refused = xstrdup_printf("no %s function: not an aaclip backend plugin",
                                    AAC_BACKEND_ENTRY_SYMBOL);
        return e->refused != NULL;
    }
    const aac_backend *be = entry(AAC_BACKEND_ABI_VERSION);
    if (!be) {
        e->refused = xstrdup_printf("%s returned nothing for backend ABI version %u (built for another version?)",
                                    AAC_BACKEND_ENTRY_SYMBOL, AAC_BACKEND_ABI_VERSION);
        return e->refused != NULL;
    }
    if (be->abi_version != AAC_BACKEND_ABI_VERSION) {
        e->refused = xstrdup_printf("built for backend ABI version %u, aaclip speaks version %u",
                                    (unsigned)be->abi_version, AAC_BACKEND_ABI_VERSION);
        return e->refused != NULL;
    }
    if (be->struct_size < sizeof(aac_backend)) {
        e->refused = xstrdup_printf("backend table of %u bytes, at least %zu expected",
                                    (unsigned)be->struct_size, sizeof(aac_backend));
        return e->refused != NULL;
    }
    e->be = be;
    const char *missing = !be->create ? "create" : !be->destroy ? "destroy" : !be->kernels ? "kernels"
                          : !be->gemm ? "gemm" : NULL;
    if (!missing && (!be->prepare_weight != !be->release_weight || (be->prepare_weight && !be->linear)))
        missing = "linear, prepare_weight or release_weight (all three or none)";
    if (!be->name || !valid_name(be->name)) {
        e->refused = strdup("invalid backend name (1-31 of a-z, 0-9, _ and -)");
    } else if (!be->version) {
        e->refused = strdup("no version string");
    } else if (missing) {
        e->refused = xstrdup_printf("required function missing: %s", missing);
    } else if (!(be->caps & (AAC_BACKEND_CAP_F32 | AAC_BACKEND_CAP_BF16))) {
        e->refused = strdup("neither f32 nor bf16 products in its capabilities");
    } else if (!strcmp(be->name, AAC_BACKEND_BUILTIN)) {
        e->refused = xstrdup_printf("the name '%s' belongs to the built-in backend", be->name);
    } else {
        const plugin_entry *first = find_usable(p, be->name);
        if (first && first != e)
            e->refused = xstrdup_printf("backend '%s' was already found earlier in the search path", be->name);
        else
            return 1;
    }
    return e->refused != NULL;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The *.so files of dir and of its immediate subfolders, in name order. */
static int scan_dir(aac_plugins *p, const char *dir, int depth) {
    if (depth == 0 && p->n_dirs < 64 && !(p->dirs[p->n_dirs++] = strdup(dir))) return 0;
    DIR *d = opendir(dir);
    if (!d) return 1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int ok = 1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, sizeof *nn * cap);
            if (!nn) { ok = 0; break; }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) { ok = 0; break; }
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n && ok; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) continue;
        struct stat sb;
        if (stat(path, &sb) != 0) continue;
        const size_t len = strlen(names[i]);
        if (S_ISDIR(sb.st_mode)) {
            if (depth == 0) ok = scan_dir(p, path, 1);
        } else if (S_ISREG(sb.st_mode) && len > 3 && !strcmp(names[i] + len - 3, ".so")) {
            ok = try_file(p, path);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return ok;
}

aac_status aac_plugins_open(const char *search_path, aac_plugins **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_plugins_open: NULL argument");
    aac_plugins *p = calloc(1, sizeof *p);
    if (!p) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    int ok = 1;
    const char *sp = search_path ? search_path : getenv("AACLIP_PLUGIN_PATH");
    if (sp) {
        char *copy = strdup(sp), *save = NULL;
        if (!copy) ok = 0;
        for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && ok; dir = strtok_r(NULL, ":", &save))
            ok = scan_dir(p, dir, 0);
        free(copy);
    }
    /* The installation's plugin folder: $AACLIP_PLUGIN_DIR, else <prefix>/lib/aaclip/plugins
     * found from the program's or libaaclip's place (the build tree has the same layout). */
    char dir[PATH_MAX];
    if (ok && aac_install_dir(AAC_DIR_PLUGINS, dir, sizeof dir, NULL) == AAC_OK) ok = scan_dir(p, dir, 0);
    if (!ok) {
        aac_plugins_free(p);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory while searching plugins");
    }
    *out = p;
    return AAC_OK;
}

void aac_plugins_free(aac_plugins *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->e[i].path);
        free(p->e[i].refused);
        if (p->e[i].handle) dlclose(p->e[i].handle); /* RTLD_NODELETE: stays mapped */
    }
    for (int i = 0; i < p->n_dirs; i++) free(p->dirs[i]);
    free(p->e);
    free(p);
}

const char *aac_plugins_dir(const aac_plugins *p, int i) {
    return p && i >= 0 && i < p->n_dirs ? p->dirs[i] : NULL;
}

int aac_plugins_get(const aac_plugins *p, int i, aac_backend_desc *out) {
    memset(out, 0, sizeof *out);
    if (i == 0) {
        const aac_backend *b = builtin_backend();
        out->name = b->name, out->version = b->version, out->caps = b->caps;
        return 1;
    }
    if (!p || i < 1 || i > p->n) return 0;
    const plugin_entry *e = &p->e[i - 1];
    out->path = e->path;
    out->refused = e->refused;
    if (e->be) out->name = e->be->name, out->version = e->be->version, out->caps = e->be->caps;
    return 1;
}

void plugins_names(const aac_plugins *p, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "%s", AAC_BACKEND_BUILTIN);
    for (int i = 0; p && i < p->n && n < cap; i++)
        if (!p->e[i].refused) n += (size_t)snprintf(buf + n, cap - n, ", %s", p->e[i].be->name);
}

aac_status plugins_find(const aac_plugins *p, const char *name, const aac_backend **out,
                        aac_error *err) {
    if (!strcmp(name, AAC_BACKEND_BUILTIN)) {
        *out = builtin_backend();
        return AAC_OK;
    }
    const plugin_entry *e = find_usable(p, name);
    if (e) {
        *out = e->be;
        return AAC_OK;
    }
    /* say why: a refused file of that name, else what there is */
    for (int i = 0; p && i < p->n; i++)
        if (p->e[i].be && p->e[i].be->name && !strcmp(p->e[i].be->name, name))
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "backend '%s': plugin %s refused: %s", name,
                            p->e[i].path, p->e[i].refused);
    char names[512];
    plugins_names(p, names, sizeof names);
    int refused = 0;
    for (int i = 0; p && i < p->n; i++) refused += p->e[i].refused != NULL;
    return aac_fail(err, AAC_ERR_MISSING,
                    "backend '%s' not found (available: %s%s; `aaclip plugins` lists the search path)",
                    name, names, refused ? "; some plugins were refused" : "");
}
