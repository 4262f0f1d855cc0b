/* fuzz_discover.c - libFuzzer target for discovery and grouping across files: the input is a
 * folder of up to 6 files, each record [name u8][length u16 LE][bytes], names drawn from a fixed
 * set (nested folders, a file without extension, a DICOMDIR). The whole folder is scanned
 * (discover.c, dicomdir.cpp, dcm_header.cpp, series.c: copies of one instance, series split
 * and merged across files, duplicate slices, 4-D) and every series is loaded and checked. */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include "fuzz_util.h"

static const char *const kNames[8] = {"a.dcm", "b.dcm", "c", "sub/d.dcm", "sub/deep/IM1", "DICOMDIR",
                                      "sub/DICOMDIR", "e.IMA"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/disc", fz_dir());
    fz_rm_tree(dir);
    mkdir(dir, 0700);
    size_t off = 0;
    for (int i = 0; i < 6 && off + 3 <= size; i++) {
        const unsigned sel = data[off] % 8;
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        off += 3;
        if (len > size - off) len = size - off;
        char name[64];
        snprintf(name, sizeof name, "disc/%s", kNames[sel]);
        fz_write(name, data + off, len);
        off += len;
    }
    const char *paths[] = {dir};
    fz_scan_load(paths, 1);
    return 0;
}
