/* data_internal.h - shared pieces of libaaclip_data (internal). */
#ifndef AAC_DATA_INTERNAL_H
#define AAC_DATA_INTERNAL_H
#include <stddef.h>

#include "aaclip_data.h"

/* Allocates w x h x channels pixels (errors name `what`). */
aac_status aac_image_alloc(aac_image *im, int w, int h, int channels, const char *what, aac_error *err);
/* "path#z=N" -> path and N; z = -1 without a suffix. */
aac_status image_ref_split(const char *ref, char *path, size_t cap, int *z, aac_error *err);
/* Reads an image reference; mask = 1: volume/DICOM voxels > 0 become 255 instead of being
 * normalised. */
aac_status image_read(const char *ref, int mask, aac_image *out, aac_error *err);
/* DICOM file or folder, or volume file: slice z (-1: the only one) as 8-bit grey. */
aac_status slice_read(const char *path, int z, int mask, aac_image *out, aac_error *err);
#endif
