/* aaclip_data.h - training and evaluation data: the reference's JSON-lines datasets, images
 * (PNG, JPEG, DICOM and NIfTI/NRRD/MetaImage slices through the ingestion library), the
 * augmentations of the spec with a seeded generator, and samples as model input.
 * Same conventions as aaclip.h: aac_status + aac_error naming the file (and line) at fault;
 * no global mutable state.
 *
 * Image references (an "image_path" or "mask_path" of a dataset line, or a path given to
 * aac_image_read):
 *   photo.png, photo.jpg        PNG or JPEG, recognised by content; 16-bit PNG keeps the high
 *                               byte, palette and grey+alpha are expanded, alpha is dropped
 *   slice.dcm                   a single-slice DICOM file (any transfer syntax the ingestion
 *                               library decodes)
 *   vol.nii.gz#z=12             slice 12 (0-based) of a volume file (.nii, .nii.gz, .nrrd, .nhdr,
 *   series_dir#z=12             .mha, .mhd), of a multi-frame DICOM file or of the one DICOM
 *   multiframe.dcm#z=3          series in a folder, along the acquisition axis; "#z=" is required
 *                               when there is more than one slice
 * Volume and DICOM images become 8-bit with the ingestion library's automatic normalisation
 * (CT window by body part, else abdomen; other modalities 0.5/99.5 percentiles of the volume);
 * masks from volumes are raw voxels > 0. A volume is read again for every slice it gives. */
#ifndef AACLIP_DATA_H
#define AACLIP_DATA_H

#include <stdint.h>

#include "aaclip.h"
#include "aaclip_dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Any image reference above as 8-bit grey or RGB (aac_image: aaclip_dicom.h). */
aac_status aac_image_read(const char *ref, aac_image *out, aac_error *err);

/* ------------------------------------------------------------------ datasets */
/* One line of a dataset: {"image_path", "label" (0/1), "class_name", "mask_path"} as AA-CLIP
 * writes them; paths relative to the folder of the .jsonl file (absolute paths kept). mask_path
 * may be absent, null or "" (no lesion pixels). Empty lines are skipped. */
typedef struct aac_sample {
    const char *image;       /* resolved image reference */
    const char *mask;        /* resolved mask reference, NULL when none */
    const char *class_name;
    int label;
    int line;                /* 1-based line in the .jsonl file */
} aac_sample;

typedef struct aac_dataset aac_dataset;

/* Parses every line and checks that every referenced file exists; errors name the file and the
 * line ("train.jsonl:12: ..."). */
aac_status aac_dataset_open(const char *jsonl, aac_dataset **out, aac_error *err);
void aac_dataset_free(aac_dataset *d);
int aac_dataset_count(const aac_dataset *d);
const aac_sample *aac_dataset_sample(const aac_dataset *d, int i);
const char *aac_dataset_path(const aac_dataset *d);

/* ------------------------------------------------------------------ augmentation */
/* Spec section 3: rotation up to +-30 degrees (p 0.5), translation up to 15% of the size in each
 * direction (p 0.5), horizontal flip (p 0.5), vertical flip (p 0.5), applied to image and mask
 * with the same nearest-neighbour mapping (outside: 0); stage 2 also jitters brightness,
 * contrast and saturation by a factor in [0.5, 1.5], each with p 0.7, in that order (as
 * torchvision's ColorJitter on PIL images: blend with black, with the mean grey level, with the
 * grey image). All on the 8-bit image before the resize. */
typedef struct aac_augment {
    float rotate_deg, rotate_p;
    float translate, translate_p; /* fraction of width / height */
    float hflip_p, vflip_p;
    float brightness, contrast, saturation, jitter_p; /* 0 = off */
} aac_augment;

/* The spec's augmentation for a training stage (1: no colour jitter, 2: with it). */
aac_augment aac_augment_default(int stage);
/* Applies a draw determined by `seed` alone to image and (when not NULL) mask, which must have
 * the image's size. */
aac_status aac_augment_apply(const aac_augment *a, uint64_t seed, aac_image *img, aac_image *mask,
                             aac_error *err);
/* A well-mixed 64-bit seed from a base seed and up to three indices (stage, epoch, sample). */
uint64_t aac_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

/* ------------------------------------------------------------------ samples as model input */
/* Loads sample i of d, augments it (aug NULL: no augmentation) with `seed`, and writes
 * input [3*S*S] (aac_preprocess_grey/rgb: Pillow bicubic + CLIP normalisation) and, when not
 * NULL, mask [S*S] (nearest resize, src = floor((o + 0.5) * in / out), 0/1 floats) and
 * mask_u8 [S*S] (0/1). The mask file must have the image's size. */
aac_status aac_dataset_load(const aac_dataset *d, int i, int S, const aac_augment *aug, uint64_t seed,
                            float *input, float *mask, uint8_t *mask_u8, aac_error *err);
/* Nearest-neighbour resize as the reference resizes masks, values != 0 -> 1. */
void aac_mask_resize_nearest(const aac_image *m, int S, uint8_t *out);

/* ------------------------------------------------------------------ synthetic phantoms */
/* Training / test data cut from the 3-D abdominal CT phantom of aaclip_synth.h (the anatomy of
 * the sample study, lesions in the liver): `volumes` phantoms, each with its own seed (mixed
 * from `seed` and the volume index, so no volume repeats the sample study's seed-1 phantom)
 * and between min_lesions and max_lesions lesions; every axial slice becomes an 8-bit PNG
 * through the ingestion library's default normalisation (the abdomen window, as `aaclip score`
 * sees the study), with label 1 and a mask where it cuts a lesion. */
typedef struct aac_phantom_set_params {
    uint64_t seed;                     /* 1 */
    int volumes;                       /* 8 */
    int size, slices;                  /* 256 x 256, 32 slices of 3 mm */
    int min_lesions, max_lesions;      /* 1..6 per volume */
    double noise_hu;                   /* 10 */
    double lesion_gap_mm;              /* 10: up to 6 lesions fit (the sample study keeps 25) */
    const char *class_name;            /* "phantom" */
    const char *jsonl_name;            /* "data.jsonl" */
} aac_phantom_set_params;

aac_phantom_set_params aac_phantom_set_default_params(void);
/* Writes dir/images/vVVVV_zZZZ.png, dir/masks/vVVVV_zZZZ.png (slices with lesion voxels) and
 * dir/<jsonl_name> in the dataset format (written last, atomically). Deterministic; p NULL:
 * defaults. n_slices / n_anomalous (may be NULL) receive the numbers of lines and of label-1
 * lines. */
aac_status aac_phantom_dataset_write(const char *dir, const aac_phantom_set_params *p, int *n_slices,
                                     int *n_anomalous, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
