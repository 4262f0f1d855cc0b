/* aaclip_synth.h - synthetic studies: a deterministic abdominal CT phantom with planted lesions,
 * written as a real CT Image Storage series (DCMTK), for the sample study in testdata/ and for
 * tests that need DICOM with a known ground truth.
 *
 * Reproducible by construction: the same parameters give byte-identical files (UIDs are hashes
 * of a seed, dates come from the parameters, random numbers come from a seeded integer
 * generator and the arithmetic avoids libm transcendental functions). Same conventions as
 * aaclip_dicom.h: aac_status + aac_error naming the file and the problem, LPS millimetres.
 */
#ifndef AACLIP_SYNTH_H
#define AACLIP_SYNTH_H

#include <stdint.h>

#include "aaclip_dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- phantom */
typedef struct aac_ct_phantom_params {
    uint64_t seed;     /* 1 */
    int size;          /* rows = columns, 256 */
    int slices;        /* 32 */
    int n_lesions;     /* 4; at most AAC_CT_PHANTOM_MAX_LESIONS */
    double fov_mm;     /* 307.2: pixel spacing = fov_mm / size (1.2 mm at 256) */
    double slice_mm;   /* 3: slice spacing and thickness */
    double noise_hu;   /* 10: standard deviation of the (near-Gaussian) noise */
    double lesion_gap_mm; /* 25: least distance between two lesions' bounding spheres */
    int hyperdense_every; /* 0: every lesion hypodense; k: lesions k, 2k, ... hyperdense */
} aac_ct_phantom_params;

#define AAC_CT_PHANTOM_MAX_LESIONS 16

aac_ct_phantom_params aac_ct_phantom_default_params(void);

typedef struct aac_ct_lesion {
    int label;            /* value in the label volume, 1-based */
    char organ[16];       /* "liver" */
    char kind[16];        /* "hypodense" or "hyperdense" */
    double centre[3];     /* LPS mm (a multiple of 0.1 mm) */
    double radius[3];     /* ellipsoid semi-axes along L, P, S in mm (multiples of 0.1 mm) */
    double hu;            /* value inside before blur and noise (an integer) */
    int centre_voxel[3];  /* nearest voxel (i, j, k) */
    int voxels;           /* voxels labelled */
} aac_ct_lesion;

typedef struct aac_ct_phantom {
    aac_volume *ct;       /* HU, integer-valued in [-1024, 3071]; modality CT, body part ABDOMEN */
    aac_volume *labels;   /* same grid: 0 background, k = lesions[k - 1] */
    aac_ct_lesion *lesions;
    int n_lesions;
} aac_ct_phantom;

/* Axial slab through an abdomen: air, body with subcutaneous fat and muscle wall, liver,
 * spleen, kidneys in perirenal fat, stomach with gas, aorta, IVC, vertebrae with discs, and
 * n_lesions lesions inside the liver (ellipsoids of 8-24 mm semi-axes; hypodense -10..10 HU, or
 * hyperdense 110..130 HU as hyperdense_every says), lesion_gap_mm clear of each other (bounding spheres)
 * and 3 mm clear of the liver's edge (shrunk, down to 3 mm semi-axes, where the slab is thin or
 * the liver crowded). Blurred in-plane like a soft-tissue kernel, then noise. AAC_ERR_ARG when
 * the lesions do not fit the slab. p NULL: defaults. */
aac_status aac_ct_phantom_make(const aac_ct_phantom_params *p, aac_ct_phantom **out, aac_error *err);
void aac_ct_phantom_free(aac_ct_phantom *ph);

/* ---------------------------------------------------------------- CT series */
typedef struct aac_ct_params {
    uint64_t uid_seed;          /* every UID is a hash of (uid_seed, role, index) */
    const char *patient_name, *patient_id, *patient_sex, *patient_birth_date;
    const char *study_date, *study_time; /* YYYYMMDD, HHMMSS: used for every date and time */
    const char *study_id, *accession_number, *study_description, *series_description;
    const char *body_part;      /* BodyPartExamined, "ABDOMEN" */
    int series_number;
    double window_center, window_width;
    double kvp;
} aac_ct_params;

aac_ct_params aac_ct_default_params(void);

/* UID 2.25.<decimal of a 128-bit hash of seed, role and index> (a version 8 UUID, PS3.5 B.2).
 * Roles used by the writer: "study", "series", "frame-of-reference", "instance" (index =
 * slice, 0-based); index 0 for the others. */
void aac_synth_uid(uint64_t seed, const char *role, int index, char out[AAC_UID_LEN]);

/* Writes v (3-D, t = 1) as a CT Image Storage series, one file per slice: dir/IM0001.dcm is
 * slice z = 0. int16 with RescaleIntercept -1024 / slope 1 (values rounded and clamped to
 * [-1024, 3071] HU), explicit VR little endian, ImagePositionPatient of each slice from the
 * volume's geometry, ImageOrientationPatient from its first two direction columns. The
 * direction must be orthonormal and right-handed (slice axis = row x column), so that a reader
 * sorting along the normal gets the slices back in the same order. dir is created if needed;
 * each file is written to a temporary name and renamed. Refuses a dir holding IMnnnn.dcm
 * beyond the series (left from a longer one: it would join this series). p NULL: defaults. */
aac_status aac_write_ct_series(const aac_volume *v, const aac_ct_params *p, const char *dir, aac_error *err);

/* Writes v (3-D, t = 1) as one Enhanced CT Image Storage object (PS3.3 A.38) at path: slice z
 * is frame z + 1; shared functional groups hold pixel measures, orientation, the HU rescale,
 * anatomy, frame type and window, per-frame groups the position and a stack dimension (Stack
 * ID 1, In-Stack Position z + 1). Values, UIDs (study, series and frame of reference as
 * aac_write_ct_series with the same seed; the instance "enhanced-instance") and the File Meta
 * are deterministic. Same conditions on v as aac_write_ct_series; written atomically. */
aac_status aac_write_enhanced_ct(const aac_volume *v, const aac_ct_params *p, const char *path, aac_error *err);

/* ---------------------------------------------------------------- sample study */
/* The sample study of testdata/: phantom p, series in dir/dicom/ (UIDs seeded from every
 * phantom parameter, so different phantoms never share UIDs), dir/lesions.json (lesions in
 * LPS mm, the grid, the UIDs) and dir/lesion_mask.nii.gz (the label volume). The DICOM files
 * sit in their own folder so that scanning dir/dicom finds exactly one series (a scan of dir
 * would also pick up the mask as a volume). p NULL: defaults. */
aac_status aac_write_sample_study(const aac_ct_phantom_params *p, const char *dir, aac_error *err);
/* The same study as one Enhanced CT multi-frame object, dir/dicom/enhanced_ct.dcm
 * (aac_write_enhanced_ct), with its own UIDs (the seed also says "enhanced"); lesions.json and
 * lesion_mask.nii.gz as above. A test source for what scanners now write. */
aac_status aac_write_sample_study_enhanced(const aac_ct_phantom_params *p, const char *dir, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
