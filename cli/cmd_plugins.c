/* cmd_plugins.c - `aaclip plugins`: the compute backends, where they were looked for, what each
 * runs on this machine, and why a plugin was refused. */
#include <stdio.h>
#include <string.h>

#include "aaclip_backend.h"
#include "cli.h"

static void plugins_help(void) {
    printf("usage: aaclip plugins [--path DIR[:DIR...]]\n"
           "\n"
           "Lists the compute backends: the built-in one (openblas) and the plugins found in\n"
           "$AACLIP_PLUGIN_PATH (or --path), then $AACLIP_PLUGIN_DIR or the installation's\n"
           "<prefix>/lib/aaclip/plugins (the build tree's build/lib/aaclip/plugins for a program\n"
           "run from there). For each: name, version, file, capabilities and the\n"
           "kernels it runs here at each precision, or why it was refused. Select one with\n"
           "--backend NAME on score, dump, bench, eval and train.\n");
}

/* Kernels of backend `name` at precision pr, or why it cannot run here. */
static void print_kernels(const aac_plugins *p, const char *name, aac_precision pr) {
    aac_compute *cx = NULL;
    aac_error err = {0};
    if (aac_compute_open(p, name, pr, 0, &cx, &err) == AAC_OK) {
        printf("    %-5s %s\n", aac_precision_name(pr), aac_compute_backend(cx)->kernels(aac_compute_state(cx)));
        aac_compute_free(cx);
    } else {
        printf("    %-5s not available here: %s\n", aac_precision_name(pr), err.message);
    }
}

int cmd_plugins(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            plugins_help();
            return 0;
        } else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            path = argv[++i];
        } else {
            fprintf(stderr, "aaclip plugins: unknown option or missing value: '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    aac_error err = {0};
    aac_plugins *p = NULL;
    if (aac_plugins_open(path, &p, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        return 1;
    }
    printf("search path:\n");
    for (int i = 0; aac_plugins_dir(p, i); i++) printf("  %s\n", aac_plugins_dir(p, i));
    printf("backends:\n");
    int usable = 0, refused = 0;
    aac_backend_desc d;
    for (int i = 0; aac_plugins_get(p, i, &d); i++) {
        if (d.refused) {
            printf("  refused  %s\n           %s\n", d.path, d.refused);
            refused++;
            continue;
        }
        char caps[160];
        aac_backend_caps_string(d.caps, caps, sizeof caps);
        printf("  %-8s %s\n           file: %s\n           capabilities: %s\n", d.name, d.version,
               d.path ? d.path : "(built in)", caps);
        if (d.caps & AAC_BACKEND_CAP_F32) print_kernels(p, d.name, AAC_PRECISION_F32);
        if (d.caps & AAC_BACKEND_CAP_BF16) print_kernels(p, d.name, AAC_PRECISION_BF16);
        usable++;
    }
    printf("%d usable, %d refused (ABI version %u)\n", usable, refused, AAC_BACKEND_ABI_VERSION);
    aac_plugins_free(p);
    return 0;
}
