/* outputs.h - what the result writers share (internal): UIDs, DICOM number
 * formatting, the private coding scheme, slice geometry. C and C++ (extern "C"). */
#ifndef AAC_OUTPUTS_INTERNAL_H
#define AAC_OUTPUTS_INTERNAL_H

#include <stddef.h>

#include "aaclip_outputs.h"
#include "fsutil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Private coding scheme for concepts SNOMED CT and DCM lack (docs/outputs.md). "99" marks a
 * private scheme (PS3.16 8.2); the SR declares it in its Coding Scheme Identification. */
#define AAC_CSD "99AACLIP"
#define AAC_CSD_NAME "aaclip private codes"
#define AAC_CODE_SCORE "AAC001"           /* Anomaly score (raw AA-CLIP map value) */
#define AAC_CODE_SCORE_M "Anomaly score"
#define AAC_CODE_SERIES "AAC002"          /* Series anomaly score */
#define AAC_CODE_SERIES_M "Series anomaly score"
#define AAC_CODE_IMAGE "AAC003"           /* Image-level anomaly score (one slice) */
#define AAC_CODE_IMAGE_M "Image anomaly score"
#define AAC_CODE_CX "AAC011"              /* centroid coordinates, LPS patient axes */
#define AAC_CODE_CX_M "Centroid x (LPS)"
#define AAC_CODE_CY "AAC012"
#define AAC_CODE_CY_M "Centroid y (LPS)"
#define AAC_CODE_CZ "AAC013"
#define AAC_CODE_CZ_M "Centroid z (LPS)"
#define AAC_CODE_REGION "AAC020"          /* Finding of a region group: anomalous region */
#define AAC_CODE_REGION_M "Anomalous region"

/* Device Observer UID of aaclip (a fixed 2.25 UUID, generated once for this project). */
#define AAC_DEVICE_UID "2.25.157502273302584570175120765648741094825"

/* New UID in the UUID-derived form 2.25.<128-bit decimal> (PS3.5 B.2), from getrandom(2). */
aac_status out_uid(char out[AAC_UID_LEN], aac_error *err);
/* "2.25." + the 128-bit big-endian number b in decimal (a UUID-derived UID, PS3.5 B.2). */
void out_uid_from_bytes(const uint8_t b[16], char out[AAC_UID_LEN]);
/* A UID derived from key (a source UID) and role ("study", "frame-of-reference"): the same
 * inputs give the same UID, so every object written from one series agrees on it. */
void out_uid_derived(const char *key, const char *role, char out[AAC_UID_LEN]);
/* DICOM DS (at most 16 characters): the shortest form that reads back as v, else the most
 * precise that fits. */
void out_ds(double v, char out[17]);

/* Checks the results (map, t, geometry); need_dicom: the source must be a DICOM series. */
aac_status out_check(const aac_results *r, int need_dicom, const char *what, aac_error *err);
/* Index of slice z of the scored volume in the source's per-slice arrays. */
static inline size_t out_slot(const aac_results *r, int z) {
    return (size_t)r->t * (size_t)r->source->dim[2] + (size_t)z;
}
/* LPS position of voxel (x, y) of slice z: on the source plane where there is one. */
void out_voxel_lps(const aac_results *r, double x, double y, int z, double out[3]);
/* Distance to the neighbouring slices along the normal (half the gaps on either side; one gap
 * at the ends; spacing[2] for single slices and volume files). */
double out_slice_spacing(const aac_results *r, int z);
/* Probability of a raw score under the resolved mapping (0 when the map is flat or the score
 * is not a number). */
static inline double out_prob(double score, double low, double high) {
    if (!(high > low)) return 0.0;
    double p = (score - low) / (high - low);
    return p >= 0.0 ? (p < 1.0 ? p : 1.0) : 0.0; /* NaN fails p >= 0 */
}
/* Series number for object k (0 SEG, 1 PMAP, 2 SR). */
int out_series_number(const aac_results *r, const aac_output_params *p, int k);
/* Maximum of the map on each slice: out [dim[2]]. */
void out_slice_max(const aac_results *r, float *out);
/* "score -> probability" mapping as one sentence for descriptions. */
void out_mapping_text(const aac_results *r, char *buf, size_t cap);

/* ---- font5x7.c: text in pictures (the PNG montage's labels) */
enum { FONT_W = 5, FONT_H = 7 }; /* a glyph; characters advance FONT_W + 1, lines FONT_H + 2 */
/* Width in pixels of s at an integer scale. */
int font_text_width(const char *s, int scale);
/* s drawn into the RGB image (w x h, stride bytes per row) with its top-left corner at (x0, y0),
 * clipped to the image; returns the width drawn. */
int font_draw(uint8_t *rgb, size_t stride, int w, int h, int x0, int y0, const char *s, int scale,
              const uint8_t colour[3]);

#ifdef __cplusplus
}
#endif
#endif
