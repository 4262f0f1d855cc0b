/* aaclip_outputs.h - results of a scored volume back out, in the forms people look at:
 *   next to a DICOM source: DICOM Segmentation (probability + thresholded masks), Parametric Map
 *   (raw scores) and a TID 1500 Measurement Report (DCMTK);
 *   for any source: NIfTI / NRRD images on the input grid, a 3D Slicer scene (libxml2) and a PNG
 *   montage of the highest-scoring slices (libpng).
 *
 * Conventions as aaclip.h: aac_status + aac_error naming the file and the problem, no global
 * mutable state. Every file is written under a temporary name in its own folder, flushed and
 * renamed into place: a failure leaves no file that looks complete, a rerun replaces results.
 * Codes, UIDs, value mappings and defaults are documented in docs/outputs.md.
 */
#ifndef AACLIP_OUTPUTS_H
#define AACLIP_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "aaclip_dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AAC_MAX_THRESHOLDS 8
#define AAC_DEFAULT_THRESHOLD 0.5 /* on the probability scale: one binary segment at p >= 0.5 */

/* One scored 3-D volume: the anomaly map of volume t of `source`, on the source's voxel grid. */
typedef struct aac_results {
    const aac_volume *source;  /* the input as loaded (geometry, per-slice DICOM sources) */
    int t;                     /* which 3-D volume of source was scored; 0 for 3-D inputs */
    const float *map;          /* raw anomaly scores [dim[2] * dim[1] * dim[0]], x fastest */
    /* Probability p = clamp((score - low) / (high - low), 0, 1). low >= high: the map's own
     * minimum and maximum (stated in every object, since it differs per volume). */
    double low, high;
    double series_score;       /* study/series-level score (raw); NaN: the map's maximum */
    const float *slice_scores; /* optional image-level score per slice [dim[2]]; NULL: none */
    int n_thresholds;          /* 0: one threshold, AAC_DEFAULT_THRESHOLD */
    double thresholds[AAC_MAX_THRESHOLDS]; /* on the probability scale, in (0, 1] */
} aac_results;

typedef struct aac_output_params {
    const char *model_hash;    /* model bundle hash as the caller states it ("sha256:..."), written
                                  as algorithm parameter; NULL: "unknown" */
    const char *model_name;    /* bundle name for descriptions; NULL: none */
    int series_number;         /* SEG series; Parametric Map +1, SR +2. 0: source series number
                                  + 1000 (1000 without one), so numbers do not collide */
    int connectivity;          /* regions: 26 (default, faces + edges + corners) or 6 (faces) */
    int montage_slices;        /* PNG montage: the N highest-scoring slices (default 6) */
    int montage_columns;       /* tiles per row (default 3) */
} aac_output_params;

aac_output_params aac_output_default_params(void);

/* ---------------------------------------------------------------- the map, resolved */
/* The probability mapping actually used (low/high resolved from the map when unset). */
void aac_results_range(const aac_results *r, double *low, double *high);
/* Thresholds actually used, sorted ascending; returns their number. */
int aac_results_thresholds(const aac_results *r, double out[AAC_MAX_THRESHOLDS]);
/* Label map [dim[2] * dim[1] * dim[0]]: the number of thresholds the voxel's probability
 * reaches (0 = below all; with one threshold a 0/1 mask). */
aac_status aac_results_labels(const aac_results *r, uint8_t *out, aac_error *err);

/* ---------------------------------------------------------------- regions */
typedef struct aac_region {
    size_t n_voxels;
    double volume_mm3;         /* sum of voxel volumes: pixel area x local slice spacing */
    double max_score, mean_score; /* raw map values inside the region */
    double centroid[3];        /* LPS mm: mean of the voxel centres, on the source planes */
    int first[3], last[3];     /* bounding box, voxel indices (inclusive) */
} aac_region;

/* Connected components of the voxels of r's label map >= level (level 1..n_thresholds: the
 * binary segment of threshold `level`), in order of their first voxel (z, then y, then x).
 * connectivity 26 or 6. *out is malloc'ed (free()); *n may be 0. */
aac_status aac_regions(const aac_results *r, int level, int connectivity, aac_region **out, int *n,
                       aac_error *err);

/* ---------------------------------------------------------------- DICOM objects */
/* These need a DICOM source (source->slice_paths); for volume files they fail with
 * AAC_ERR_UNSUPPORTED and say so. */

/* Segmentation series of two instances (the SEG type is per instance): prob_path FRACTIONAL /
 * PROBABILITY with one segment, p scaled to 0..255; binary_path BINARY with one segment per
 * threshold. One frame per source slice and segment, on the source planes, referencing them. */
aac_status aac_write_seg(const aac_results *r, const aac_output_params *p, const char *prob_path,
                         const char *binary_path, aac_error *err);
/* Parametric Map of the raw float32 scores with a Real World Value Mapping (identity). */
aac_status aac_write_pmap(const aac_results *r, const aac_output_params *p, const char *path,
                          aac_error *err);
/* TID 1500 Measurement Report (Comprehensive SR): device observer, image library, series score,
 * per-slice maximum, one volumetric ROI group per region of each binary segment of the SEG at
 * binary_seg_path (written by aac_write_seg for the same results). */
aac_status aac_write_sr(const aac_results *r, const aac_output_params *p, const char *binary_seg_path,
                        const char *path, aac_error *err);

/* What a SEG holds, read back through DCMTK (for checks and for reference segmentations). */
typedef struct aac_seg_frame {
    int segment;                 /* referenced segment number */
    double position[3];          /* ImagePositionPatient */
    double orientation[6];       /* ImageOrientationPatient */
    char source_sop_class[AAC_UID_LEN];
    char source_uid[AAC_UID_LEN]; /* derivation image (first source image item) */
    int source_frame;            /* referenced frame number, 0 when absent */
} aac_seg_frame;

typedef struct aac_seg {
    int rows, cols, n_frames, n_segments;
    int fractional;              /* 1: FRACTIONAL, 0: BINARY */
    int max_fractional;          /* MaximumFractionalValue (fractional only) */
    double pixel_spacing[2];     /* row spacing, column spacing */
    uint8_t *pixels;             /* [n_frames * rows * cols]: 0/1 (binary) or 0..max (fractional) */
    aac_seg_frame *frames;
    char (*segment_labels)[AAC_LO_LEN]; /* [n_segments], segment number i+1 */
    char sop_uid[AAC_UID_LEN], series_uid[AAC_UID_LEN], study_uid[AAC_UID_LEN];
    char frame_of_reference_uid[AAC_UID_LEN];
    int series_number;
} aac_seg;

aac_status aac_seg_read(const char *path, aac_seg **out, aac_error *err);
void aac_seg_free(aac_seg *s);

/* ---------------------------------------------------------------- images, scene, montage */
/* dir/anomaly_map.nii.gz + .nrrd (raw float32 scores), dir/label_map.nii.gz + .nrrd (uint8,
 * aac_results_labels), dir/input.nrrd (volume t of the source), all with the source geometry
 * (the affine the NIfTI converter writes). */
aac_status aac_write_images(const aac_results *r, const char *dir, aac_error *err);
/* One of those images at any path, the format by its name (.nrrd NRRD, .nii/.nii.gz NIfTI,
 * .mha MetaImage; single files only), with the source geometry: for callers that choose the names (the
 * 3D Slicer module writes where Slicer asks). */
typedef enum aac_result_image {
    AAC_IMAGE_ANOMALY_MAP = 0, /* raw float32 scores (r->map) */
    AAC_IMAGE_LABEL_MAP = 1,   /* uint8, aac_results_labels */
    AAC_IMAGE_INPUT = 2        /* float32, volume t of the source */
} aac_result_image;
aac_status aac_write_result_image(const aac_results *r, aac_result_image which, const char *path, aac_error *err);
/* dir/scene.mrml (3D Slicer) over the NRRD files of aac_write_images: the input, the map as a
 * colour-mapped foreground, the label map as a label volume, colour tables as files beside it. */
aac_status aac_write_scene(const aac_results *r, const char *dir, aac_error *err);
/* PNG montage of the p->montage_slices slices with the highest maximum score: input in grey
 * (aac_volume_norm defaults), probability >= 0.1 in heat colours, first threshold outlined; each
 * tile captioned (slice index, its score, the threshold), a colour bar of the probability with
 * the threshold marked. Layout in docs/outputs.md. */
aac_status aac_write_png_montage(const aac_results *r, const aac_output_params *p, const char *path,
                                 aac_error *err);

/* Everything into dir (created if missing): images, scene, montage.png, and for DICOM sources
 * seg_probability.dcm, seg_binary.dcm, pmap.dcm, sr.dcm. For volume files `note` (may be NULL)
 * receives why no DICOM objects were written; empty otherwise. */
aac_status aac_write_outputs(const aac_results *r, const aac_output_params *p, const char *dir,
                             char *note, size_t note_cap, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
