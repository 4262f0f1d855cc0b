/* install_dirs.h - where aaclip's installed files are, found at run time from where the program
 * is, never from a path compiled in (internal; shared through the aaclip_internal target).
 *
 * An installation is one prefix: <prefix>/bin/aaclip, <prefix>/<libdir>/libaaclip.so,
 * <prefix>/share/aaclip (data: the tokenizer's merge list, the demo model, the sample study),
 * <prefix>/lib/aaclip/plugins, <prefix>/lib/aaclip/slicer/aaclip-slicer. The build tree has the
 * same layout (build/bin, build/share/aaclip linking to the sources' data, build/lib/aaclip/...),
 * so a program in the build tree finds its data the same way, and a moved prefix still works.
 * The relative parts (share/aaclip, lib/aaclip/plugins) come from the CMake install layout. */
#ifndef AAC_INSTALL_DIRS_H
#define AAC_INSTALL_DIRS_H
#include <stddef.h>

#include "aaclip.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aac_install_kind {
    AAC_DIR_DATA = 0,    /* share/aaclip; override: $AACLIP_DATA_DIR */
    AAC_DIR_PLUGINS = 1  /* lib/aaclip/plugins; override: $AACLIP_PLUGIN_DIR */
} aac_install_kind;

/* The folder, as an absolute path without symbolic links, into out (cap bytes). The
 * environment override wins when set (it must name a folder). Otherwise the prefix is looked
 * for from two anchors, the running executable (/proc/self/exe) and the file that holds this
 * code (the executable itself, or libaaclip.so for programs linked with the shared library):
 * for each, 1, 2 and 3 folders up from the one holding it (bin/, lib/<arch>/,
 * lib/aaclip/slicer/), the first <prefix>/<relative folder> that exists; for the data folder it
 * must also hold the tokenizer's merge list. AAC_ERR_MISSING naming what was searched otherwise. */
aac_status aac_install_dir(aac_install_kind kind, char *out, size_t cap, aac_error *err);

/* <folder of kind>/<name> into out; the same errors, and AAC_ERR_MISSING when that entry does
 * not exist. */
aac_status aac_install_path(aac_install_kind kind, const char *name, char *out, size_t cap, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
