/* image_read.c - what an image reference of a dataset names: a PNG/JPEG picture (ingestion's
 * picture reader), else a DICOM file or folder or a volume file slice (slice.c). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "data_internal.h"
#include "error.h"

aac_status image_read(const char *ref, int mask, aac_image *out, aac_error *err) {
    if (!ref || !out) return aac_fail(err, AAC_ERR_ARG, "aac_image_read: NULL argument");
    memset(out, 0, sizeof *out);
    char path[4096];
    int z = -1;
    aac_status s = image_ref_split(ref, path, sizeof path, &z, err);
    if (s) return s;
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        /* a folder of DICOM files cannot be fopen'ed for reading on every system */
        if (errno == EISDIR) return slice_read(path, z, mask, out, err);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    const int kind = aac_picture_kind(head, got);
    if (!kind) return slice_read(path, z, mask, out, err);
    if (z > 0)
        return aac_fail(err, AAC_ERR_ARG, "%s: a %s has one slice (#z=%d)", path,
                        kind == AAC_PICTURE_PNG ? "PNG" : "JPEG", z);
    return aac_picture_read(path, out, err);
}

aac_status aac_image_read(const char *ref, aac_image *out, aac_error *err) { return image_read(ref, 0, out, err); }
