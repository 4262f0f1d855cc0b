/* slice.c - DICOM and volume slices as 8-bit images, through libaaclip_dicom; the "#z=N"
 * reference syntax. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_dicom.h"
#include "data_internal.h"
#include "error.h"

aac_status image_ref_split(const char *ref, char *path, size_t cap, int *z, aac_error *err) {
    *z = -1;
    const char *hash = strrchr(ref, '#');
    /* only "#z=" ends a reference: other '#' are part of the file name */
    if (hash && !strncmp(hash, "#z=", 3)) {
        char *end;
        errno = 0;
        long v = strtol(hash + 3, &end, 10);
        if (errno || end == hash + 3 || *end || v < 0 || v > 1000000)
            return aac_fail(err, AAC_ERR_ARG, "%s: bad slice index after '#z=' (a number >= 0 is expected)", ref);
        *z = (int)v;
    } else {
        hash = NULL;
    }
    const size_t n = hash ? (size_t)(hash - ref) : strlen(ref);
    if (n == 0 || n >= cap) return aac_fail(err, AAC_ERR_ARG, "'%s': empty or too long path", ref);
    memcpy(path, ref, n);
    path[n] = 0;
    return AAC_OK;
}

/* Loads the one series at path (DICOM file or folder) or the volume file. */
static aac_status load_volume(const char *path, aac_volume **v, aac_error *err) {
    if (aac_is_volume_file(path)) return aac_volume_read(path, v, err);
    aac_scan *sc;
    aac_status s = aac_scan_paths(&path, 1, &sc, err);
    if (s) return s;
    const int n = aac_scan_series_count(sc);
    if (n == 1) {
        s = aac_scan_load(sc, 0, v, err);
    } else if (n == 0) {
        const char *why = aac_scan_note_count(sc) ? aac_scan_note(sc, 0, NULL) : "";
        s = aac_fail(err, AAC_ERR_FORMAT, "%s: not a PNG, JPEG, DICOM or volume file%s%s", path, *why ? ": " : "",
                     why);
    } else {
        s = aac_fail(err, AAC_ERR_ARG, "%s: holds %d DICOM series; point to one series", path, n);
    }
    aac_scan_free(sc);
    return s;
}

aac_status slice_read(const char *path, int z, int mask, aac_image *out, aac_error *err) {
    aac_volume *v = NULL;
    aac_status s = load_volume(path, &v, err);
    if (s) return s;
    aac_norm_params np = aac_norm_default_params();
    aac_norm n;
    s = aac_volume_norm(v, 0, &np, &n, err);
    if (!s && mask) n.low = 0, n.high = 1e-6; /* label voxels > 0 -> 255 */
    if (!s) {
        const int count = aac_volume_slice_count(v, n.axis);
        if (z < 0 && count > 1)
            s = aac_fail(err, AAC_ERR_ARG, "%s: %d slices: name one as '%s#z=N' (0..%d)", path, count, path, count - 1);
        else if (z >= count)
            s = aac_fail(err, AAC_ERR_ARG, "%s#z=%d: only %d slices (0..%d)", path, z, count, count - 1);
    }
    int w = 0, h = 0;
    if (!s) {
        aac_volume_slice_size(v, n.axis, &w, &h);
        s = aac_image_alloc(out, w, h, 1, path, err);
    }
    if (!s) s = aac_volume_slice_u8(v, &n, 0, z < 0 ? 0 : z, out->px, err);
    if (s) aac_image_release(out);
    aac_volume_free(v);
    return s;
}
