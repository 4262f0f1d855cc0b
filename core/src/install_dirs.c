/* install_dirs.c - the installation's folders from the program's own place (install_dirs.h). */
#define _GNU_SOURCE /* dladdr */
#include "install_dirs.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* Relative to the prefix, from the CMake install layout (GNUInstallDirs); set for this file. */
#ifndef AACLIP_REL_DATADIR
#define AACLIP_REL_DATADIR "share/aaclip"
#endif
#ifndef AACLIP_REL_PLUGINDIR
#define AACLIP_REL_PLUGINDIR "lib/aaclip/plugins"
#endif
/* What marks a data folder as aaclip's (a folder of that name alone is not enough). */
#define DATA_LANDMARK "bpe_simple_vocab_16e6.txt.gz"

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The folder holding anchor 0 (the executable) or 1 (the file holding this code), resolved. */
static int anchor_dir(int which, char *out, size_t cap) {
    char path[PATH_MAX];
    if (which == 0) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0) return -1;
        path[n] = '\0';
    } else {
        Dl_info info;
        if (!dladdr((void *)&aac_install_dir, &info) || !info.dli_fname || !realpath(info.dli_fname, path))
            return -1;
    }
    char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= cap) return -1;
    *slash = '\0';
    snprintf(out, cap, "%s", path[0] ? path : "/");
    return 0;
}

aac_status aac_install_dir(aac_install_kind kind, char *out, size_t cap, aac_error *err) {
    if (!out || !cap || (kind != AAC_DIR_DATA && kind != AAC_DIR_PLUGINS))
        return aac_fail(err, AAC_ERR_ARG, "aac_install_dir: bad argument");
    const char *env_name = kind == AAC_DIR_DATA ? "AACLIP_DATA_DIR" : "AACLIP_PLUGIN_DIR";
    const char *rel = kind == AAC_DIR_DATA ? AACLIP_REL_DATADIR : AACLIP_REL_PLUGINDIR;
    char buf[PATH_MAX], real[PATH_MAX];
    const char *env = getenv(env_name);
    if (env && env[0]) {
        if (!realpath(env, real) || !is_dir(real))
            return aac_fail(err, AAC_ERR_MISSING, "%s=%.300s is not a folder", env_name, env);
        if (strlen(real) >= cap) return aac_fail(err, AAC_ERR_ARG, "%s: path too long", env_name);
        memcpy(out, real, strlen(real) + 1);
        return AAC_OK;
    }
    char anchors[2][PATH_MAX];
    int have[2];
    for (int a = 0; a < 2; a++) have[a] = anchor_dir(a, anchors[a], sizeof anchors[a]) == 0;
    for (int a = 0; a < 2; a++) {
        if (!have[a] || (a == 1 && have[0] && !strcmp(anchors[0], anchors[1]))) continue;
        for (int up = 1; up <= 3; up++) {
            int n = snprintf(buf, sizeof buf, "%s", anchors[a]);
            for (int k = 0; k < up && n > 0 && (size_t)n < sizeof buf; k++)
                n += snprintf(buf + n, sizeof buf - (size_t)n, "/..");
            if (n <= 0 || (size_t)n >= sizeof buf) continue;
            snprintf(buf + n, sizeof buf - (size_t)n, "/%s", rel);
            if (!realpath(buf, real) || !is_dir(real)) continue;
            if (kind == AAC_DIR_DATA) {
                char mark[PATH_MAX + 64];
                struct stat sb;
                snprintf(mark, sizeof mark, "%s/%s", real, DATA_LANDMARK);
                if (stat(mark, &sb) != 0) continue;
            }
            if (strlen(real) >= cap) return aac_fail(err, AAC_ERR_ARG, "%s: path too long", real);
            memcpy(out, real, strlen(real) + 1);
            return AAC_OK;
        }
    }
    return aac_fail(err, AAC_ERR_MISSING,
                    "aaclip's %s folder (<prefix>/%s) was not found above %.300s%s%.300s; set %s",
                    kind == AAC_DIR_DATA ? "data" : "plugin", rel, have[0] ? anchors[0] : "(no executable path)",
                    have[1] && (!have[0] || strcmp(anchors[0], anchors[1])) ? " or " : "",
                    have[1] && (!have[0] || strcmp(anchors[0], anchors[1])) ? anchors[1] : "", env_name);
}

aac_status aac_install_path(aac_install_kind kind, const char *name, char *out, size_t cap, aac_error *err) {
    char dir[PATH_MAX];
    aac_status s = aac_install_dir(kind, dir, sizeof dir, err);
    if (s) return s;
    if (!name || snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
        return aac_fail(err, AAC_ERR_ARG, "aac_install_path: bad name or path too long");
    struct stat sb;
    if (stat(out, &sb) != 0) return aac_fail(err, AAC_ERR_MISSING, "%.400s: not found in aaclip's installation", out);
    return AAC_OK;
}

aac_status aac_data_path(const char *name, char *out, size_t cap, aac_error *err) {
    return aac_install_path(AAC_DIR_DATA, name, out, cap, err);
}
