/* aaclip_dicom.h - public API of libaaclip_dicom: studies in (DICOM series, NIfTI/NRRD/MetaImage
 * volumes) as volumes with patient geometry, and volumes out as 8-bit slices for the model.
 *
 * Same conventions as aaclip.h: every call returns an aac_status and fills the aac_error passed
 * in (may be NULL) with a message naming the file and the problem. Nothing here aborts on bad
 * input: a file that cannot be read becomes a note of the scan, and a series that cannot be
 * decoded fails alone. No global mutable state except DCMTK's decoder registry, set up once.
 *
 * Geometry follows DICOM and ITK: LPS patient coordinates in mm; voxel (i,j,k) lies at
 *   origin + direction * diag(spacing) * (i,j,k)^T.
 */
#ifndef AACLIP_DICOM_H
#define AACLIP_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "aaclip.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AAC_UID_LEN 65  /* DICOM UI: 64 characters + NUL */
#define AAC_LO_LEN 65   /* DICOM LO: 64 characters + NUL */
#define AAC_CS_LEN 17   /* DICOM CS: 16 characters + NUL */

/* ---------------------------------------------------------------- volume */
/* Voxels are float32 after the modality rescale (CT: Hounsfield units), stored x fastest:
 * voxels[((t * dim[2] + z) * dim[1] + y) * dim[0] + x]. For DICOM, x runs along the rows
 * (ImageOrientationPatient's first vector), y down the columns, z along the slice normal in
 * increasing position, t over temporal positions / repeated acquisitions. */
typedef struct aac_volume {
    int dim[4];           /* x, y, z, t; each >= 1 */
    float *voxels;
    double origin[3];     /* LPS mm of voxel (0,0,0) */
    double spacing[3];    /* mm between voxel centres along x, y, z */
    double direction[9];  /* row-major 3x3; column j is the LPS unit vector of index axis j */
    double t_spacing;     /* seconds between volumes (repetition time), 0 when unknown */
    /* Source of each 2-D slice, for writing results back: [dim[2] * dim[3]], z fastest.
     * NULL for NIfTI/NRRD/MetaImage inputs. Frame numbers are 1-based, 0 = single frame. */
    char (*slice_uids)[AAC_UID_LEN];
    int *slice_frames;
    char modality[AAC_CS_LEN];
    char body_part[AAC_CS_LEN];
    char series_uid[AAC_UID_LEN];
    char study_uid[AAC_UID_LEN];
    char frame_of_reference_uid[AAC_UID_LEN];
    char patient_id[AAC_LO_LEN];
    char series_description[AAC_LO_LEN];
    char study_description[AAC_LO_LEN];
    char manufacturer[AAC_LO_LEN];
    char transfer_syntax[AAC_UID_LEN];
    int series_number;    /* -1 when absent */
    char source[1024];    /* first file or the volume file */
    int n_warnings;       /* geometry and decoding problems worth a user's attention */
    char **warnings;
    /* Per-slice source of a DICOM series, indexed like slice_uids (NULL for volume files):
     * the file holding the slice, its SOP Class, and its plane as the source states it (a
     * mosaic tile: its corrected position; no ImagePositionPatient: the regular grid). Results
     * are written back on these planes, never on an assumed regular grid, so they stay on the
     * source slices with gantry tilt or uneven spacing. */
    char **slice_paths;
    char (*slice_sop_classes)[AAC_UID_LEN];
    double (*slice_positions)[3];     /* ImagePositionPatient, LPS mm */
    double (*slice_orientations)[6];  /* ImageOrientationPatient: row then column direction */
    double slice_thickness;           /* SliceThickness in mm, 0 when absent */
} aac_volume;

void aac_volume_free(aac_volume *v);
size_t aac_volume_voxel_count(const aac_volume *v);

/* 1 when the name ends in .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd. */
int aac_is_volume_file(const char *path);
/* NIfTI / NRRD / MetaImage through ITK (qform/sform chosen as ITK does), up to 4-D, scalar. */
aac_status aac_volume_read(const char *path, aac_volume **out, aac_error *err);
/* NIfTI-1 through ITK (.nii or .nii.gz): integer type when every voxel is an integer that
 * fits int16/uint16/int32, otherwise float32. 3-D when dim[3] == 1. */
aac_status aac_volume_write_nifti(const aac_volume *v, const char *path, aac_error *err);
/* The same with the voxels stored in another order (the affine follows, so every voxel keeps
 * its place in the world): index axis a of the file runs along the volume's axis
 * |axes[a]| - 1, reversed when axes[a] < 0. {1, 2, 3} writes what aac_volume_write_nifti does;
 * aac_series_info.nifti_axes gives dcm2niix's order. AAC_ERR_ARG unless axes is a signed
 * permutation of 1, 2, 3. */
aac_status aac_volume_write_nifti_axes(const aac_volume *v, const int axes[3], const char *path, aac_error *err);

/* ---------------------------------------------------------------- scanning for DICOM */
typedef struct aac_scan aac_scan;

typedef enum aac_note_level {
    AAC_NOTE_DEBUG = 0,   /* not DICOM (README, ...) or not an image (SR, DICOMDIR): skipped */
    AAC_NOTE_WARNING = 1  /* a DICOM file that could not be used: truncated, no pixel data, ...;
                           * a DICOMDIR that cannot be used or lists a file that is missing */
} aac_note_level;

/* What the headers say about one series, before any pixel is decoded. */
typedef struct aac_series_info {
    char series_uid[AAC_UID_LEN];
    char study_uid[AAC_UID_LEN];
    char patient_id[AAC_LO_LEN];
    char modality[AAC_CS_LEN];
    char body_part[AAC_CS_LEN];
    char series_description[AAC_LO_LEN];
    char manufacturer[AAC_LO_LEN];
    char transfer_syntax[AAC_UID_LEN];
    char image_type[AAC_LO_LEN];
    int series_number;        /* -1 when absent */
    int echo_number;          /* 0 when absent */
    int part;                 /* 0, or 1, 2, ... when one SeriesInstanceUID was split */
    int dim[4];               /* as the loaded volume will be */
    double spacing[3];
    /* The voxel order dcm2niix writes for this series, which `aaclip convert` follows: index
     * axis a of its array runs along the volume's axis |nifti_axes[a]| - 1, reversed when
     * negative ({1, -2, 3}: rows flipped, its usual order; a 3-D acquisition is turned to the
     * orthogonal orientation nearest to RAS). The volume itself keeps the layout above; pass
     * this to aac_volume_write_nifti_axes. {1, 2, 3} for volume files. */
    int nifti_axes[3];
    /* The same grid as dcm2niix states it (origin and spacing of the volume's layout, direction
     * unchanged): it takes the slice spacing from the first two images in instance order and
     * places the stack from the first, where the volume fits all slices; they differ by the
     * rounding of the positions. `aaclip convert` writes these. Zero for volume files. */
    double nifti_origin[3];
    double nifti_spacing[3];
    int n_files;
    const char *first_file;
    int n_warnings;           /* geometry problems found from the headers */
    char **warnings;
} aac_series_info;

/* Walks each path (file or folder, recursively), recognises DICOM by content, groups image
 * instances into series; NIfTI/NRRD/MetaImage files met on the way (by name) become one series
 * each, after the DICOM ones (their transfer_syntax names the ITK reader). A folder's DICOMDIR
 * is read first (a DICOMDIR given as a path stands for the files it lists); each file is read
 * once however it is reached, and a copy of an instance (same SOP Instance UID) is used once,
 * with a series warning. Fails only on a path that does not exist or on memory; unreadable
 * files and DICOMDIRs become notes. */
aac_status aac_scan_paths(const char *const *paths, int n_paths, aac_scan **out, aac_error *err);
int aac_scan_series_count(const aac_scan *s);
const aac_series_info *aac_scan_series(const aac_scan *s, int i);
/* PNG and JPEG files met on the way (recognised by content), in the order met: 2-D pictures
 * (the industrial / photograph case), not series. They keep their colour, so the ingestion
 * library does not decode them; the data library reads them (aaclip_data.h, aac_image_read). */
int aac_scan_image_count(const aac_scan *s);
const char *aac_scan_image(const aac_scan *s, int i);
int aac_scan_note_count(const aac_scan *s);
/* "path: what is wrong"; level may be NULL. */
const char *aac_scan_note(const aac_scan *s, int i, aac_note_level *level);
/* Decodes series i into a volume (rescaled, de-mosaicked, sorted). */
aac_status aac_scan_load(const aac_scan *s, int i, aac_volume **out, aac_error *err);
void aac_scan_free(aac_scan *s);

/* Series i of s as bytes for another process of the same build (an MPI rank), which turns
 * them back into a scan holding just that series (aac_scan_unpack: series 0, same info, same
 * warnings, loads to the same volume) without scanning the inputs again; the files must be
 * readable there under the same paths. *index receives i (may be NULL). Bytes from another
 * build (struct layout, byte order) or damaged bytes are refused with AAC_ERR_FORMAT. */
aac_status aac_scan_pack(const aac_scan *s, int i, void **buf, size_t *len, aac_error *err);
aac_status aac_scan_unpack(const void *buf, size_t len, aac_scan **out, int *index, aac_error *err);

/* Human-readable name of a transfer syntax UID ("JPEG 2000 (lossless only)"), or the UID. */
const char *aac_transfer_syntax_name(const char *uid);

/* ---------------------------------------------------------------- pictures */
/* 8-bit image, channels 1 (grey) or 3 (RGB), interleaved, row-major: a PNG or JPEG picture
 * (the industrial / photograph case, training images), kept in colour. */
typedef struct aac_image {
    int w, h, channels;
    uint8_t *px;
} aac_image;

enum { AAC_PICTURE_PNG = 1, AAC_PICTURE_JPEG = 2 };
/* AAC_PICTURE_PNG / _JPEG when the first n bytes of a file are a PNG signature or a JPEG SOI
 * followed by a marker; 0 otherwise. */
int aac_picture_kind(const unsigned char *head, size_t n);
/* PNG or JPEG by content: 16-bit PNG keeps the high byte, palette and grey+alpha are
 * expanded, alpha is dropped; CMYK JPEG is refused. */
aac_status aac_picture_read(const char *path, aac_image *out, aac_error *err);
/* PNG (grey or RGB, 8-bit), written to a temporary file and renamed. */
aac_status aac_image_write_png(const char *path, const aac_image *im, aac_error *err);
/* w x h x channels pixels, uninitialised (errors name `what`); frees nothing. */
aac_status aac_image_alloc(aac_image *im, int w, int h, int channels, const char *what, aac_error *err);
void aac_image_release(aac_image *im); /* frees px, zeroes the struct */

/* ---------------------------------------------------------------- 8-bit slices */
typedef enum aac_norm_mode {
    AAC_NORM_AUTO = 0,       /* CT: window (preset from body part, else abdomen); others: percentiles */
    AAC_NORM_WINDOW = 1,     /* window: preset, or center/width when width > 0 */
    AAC_NORM_PERCENTILE = 2  /* robust range per 3-D volume */
} aac_norm_mode;

typedef struct aac_norm_params {
    aac_norm_mode mode;
    const char *preset;      /* brain, subdural, abdomen, liver, lung, bone; NULL = by body part */
    double center, width;    /* explicit window (--window C/W) when width > 0 */
    double p_low, p_high;    /* percentiles, 0.5 and 99.5 */
    int axis;                /* -1: acquisition plane; 0, 1, 2: slices across that index axis */
} aac_norm_params;

aac_norm_params aac_norm_default_params(void);

/* The mapping actually used, to record next to results. */
typedef struct aac_norm {
    double low, high;        /* value mapped to 0 and to 255 (linear in between, clamped) */
    int axis;                /* 0, 1 or 2 */
    char method[96];         /* e.g. "window abdomen C40 W400", "percentile 0.5/99.5" */
} aac_norm;

/* Named CT window; AAC_ERR_ARG (listing the names) for an unknown one. */
aac_status aac_window_preset(const char *name, double *center, double *width, aac_error *err);
/* Chooses the mapping for 3-D volume t of v. */
aac_status aac_volume_norm(const aac_volume *v, int t, const aac_norm_params *p, aac_norm *out,
                           aac_error *err);
/* Number of slices along the mapping's axis, and their size (w x h). */
int aac_volume_slice_count(const aac_volume *v, int axis);
void aac_volume_slice_size(const aac_volume *v, int axis, int *w, int *h);
/* 8-bit slice `index` of volume t: out [h * w]. Slices across x or y run with z upwards
 * (row 0 = last z), so a head-first axial series shows superior at the top. */
aac_status aac_volume_slice_u8(const aac_volume *v, const aac_norm *n, int t, int index,
                               uint8_t *out, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
