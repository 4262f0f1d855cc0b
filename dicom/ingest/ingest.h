/* ingest.h - what the DICOM scan keeps per file, per frame and per series (internal).
 * Shared by the C code and the thin DCMTK/ITK wrappers (extern "C"). */
#ifndef AAC_INGEST_H
#define AAC_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "aaclip_dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Growable list of owned strings (warnings, notes). */
typedef struct strlist {
    char **items;
    int *levels;
    int n, cap;
} strlist;
int strlist_addf(strlist *l, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void strlist_free(strlist *l);
/* Copies the list into a fresh char** (for aac_volume / aac_series_info). */
int strlist_copy(const strlist *l, char ***out, int *n);

/* Header attributes of one DICOM file (one instance). */
typedef struct dcm_file {
    char *path;
    char ts_uid[AAC_UID_LEN], sop_class[AAC_UID_LEN], sop_uid[AAC_UID_LEN];
    char series_uid[AAC_UID_LEN], study_uid[AAC_UID_LEN], for_uid[AAC_UID_LEN];
    char patient_id[AAC_LO_LEN], series_desc[AAC_LO_LEN], study_desc[AAC_LO_LEN];
    char manufacturer[AAC_LO_LEN], image_type[AAC_LO_LEN];
    char modality[AAC_CS_LEN], body_part[AAC_CS_LEN], photometric[AAC_CS_LEN];
    int series_number, instance_number, temporal_position, echo_number; /* -1 / 0 absent */
    int acquisition_number;                /* 0 absent */
    char acquisition_time[AAC_LO_LEN];     /* AcquisitionTime (else DateTime) as written, "" absent */
    double echo_time, repetition_time;   /* ms, 0 absent */
    int rows, cols, spp, planar, bits_alloc, bits_stored, high_bit, pixel_rep, n_frames;
    int ybr;                               /* native YBR_FULL (1) or YBR_FULL_422 (2): Y is the grey */
    double slice_thickness, slice_spacing; /* 0 absent */
    int encapsulated;                      /* compressed pixel data */
    int gzipped;                           /* the file is gzip-compressed DICOM (*.dcm.gz) */
    int mr_3d, epi;                        /* MRAcquisitionType 3D; echo-planar (dcm2niix's order) */
    int enhanced;                          /* per-frame functional groups present */
    int mosaic_images;                     /* Siemens CSA NumberOfImagesInMosaic, 0 = none */
    int has_csa_normal;
    double csa_normal[3];                  /* Siemens CSA SliceNormalVector */
    int csa_slice;                         /* Siemens CSA ProtocolSliceNumber, -1 absent */
} dcm_file;

/* One 2-D image: a frame of a file, or one tile of a mosaic frame. */
typedef struct dcm_frame {
    int file;                 /* index into the scan's files */
    int frame;                /* 0-based frame of that file */
    int tile;                 /* mosaic tile, -1 when not a mosaic */
    int rows, cols;           /* of this 2-D image (a tile's size for mosaics) */
    int has_ipp, has_iop, has_ps;
    double ipp[3], iop[6], ps[2]; /* position, orientation, PixelSpacing (row, column) */
    double slope, intercept;  /* value = stored * slope + intercept */
    int temporal;             /* temporal position (index), 0 absent */
    int echo_number;
    double echo_time;         /* ms: EchoTime, per-frame EffectiveEchoTime wins; 0 absent */
    double thickness;         /* per-frame slice thickness, 0 absent */
    char frame_type[AAC_LO_LEN]; /* image/frame type used to split series (value 3 on) */
    int derived;              /* DERIVED, or a diffusion ADC / trace / FA map (split as dcm2niix) */
    int isotropic;            /* diffusion-weighted isotropic (trace) image: b > 0 and no direction */
} dcm_frame;

/* One series after grouping and geometry: slot s (z fastest) shows frame order[s]. */
typedef struct dcm_series {
    aac_series_info info;
    char *volume_path;        /* a NIfTI/NRRD/MetaImage file instead of DICOM frames */
    int *frames;              /* the series' frames (indices into scan frames) */
    int n_frames;
    int *order;               /* [dim[2] * dim[3]] frame per slot */
    double origin[3], spacing[3], direction[9], t_spacing;
    strlist warnings;
} dcm_series;

struct aac_scan {
    dcm_file *files;
    int n_files, cap_files;
    dcm_frame *frames;
    int n_frames, cap_frames;
    dcm_series *series;
    int n_series;
    char **volume_files;      /* NIfTI/NRRD/MetaImage files met while walking */
    int n_volume_files, cap_volume_files;
    char **image_files;       /* PNG/JPEG files (by content) met while walking */
    int n_image_files, cap_image_files;
    strlist notes;
};

/* ---- DCMTK wrapper (dcm_init.cpp, dcm_header.cpp, dcm_pixels.cpp) */
/* Registers DCMTK's decoders and quietens its logger, once per process (thread-safe). */
void dcm_init(void);
/* Reads the header of path into f and appends its frames to the scan (one per frame, mosaic
 * not yet expanded). AAC_ERR_MISSING for a DICOM object that is not an image (DICOMDIR, SR,
 * SEG: skipped quietly); other codes for an image that cannot be used. Messages name the file. */
aac_status dcm_read_header(aac_scan *s, const char *path, aac_error *err);
/* ReferencedFileIDs of a DICOMDIR's records (DcmDicomDir's record tree, then records it could
 * not link), as written: components separated by '\\', relative to the DICOMDIR's folder.
 * AAC_ERR_FORMAT, naming the file, when it cannot be parsed or is not a DICOMDIR. */
aac_status dcm_read_dicomdir(const char *path, strlist *ids, aac_error *err);
/* Decodes all frames of f: out [n_frames * rows * cols * spp] stored values, masked to
 * BitsStored and sign-extended, colour interleaved (YBR_FULL_422 expanded to one Y, Cb, Cr
 * per pixel). *y_grey (may be NULL) is set to 1 when colour samples are still Y, Cb, Cr after
 * decoding (their grey is Y), 0 for RGB. */
aac_status dcm_read_pixels(const dcm_file *f, int32_t *out, int *y_grey, aac_error *err);

/* ---- JPEG 2000 (free DCMTK has no JPEG 2000 decoder): dcm_pixels.cpp gathers the pixel
 * data's fragments with DCMTK, j2k_decode.c decodes them with OpenJPEG. */
typedef struct j2k_fragment {
    const uint8_t *data;
    size_t len;
} j2k_fragment;
/* The frames of f from its encapsulated fragments (the offset table left out, empty items
 * too), in dcm_read_pixels' contract (OpenJPEG undoes a YBR_RCT/YBR_ICT colour transform; the
 * caller marks YBR_FULL). Fragments make frames as frame_starts says (PS3.5 A.4). Each frame's SIZ
 * (j2k_read_info) and then OpenJPEG's image are checked against the header before decoding, the
 * decoded image again before its samples are copied; a disagreement, a truncated codestream or
 * a frame count other than f->n_frames is refused naming the file, the frame and the problem. */
aac_status j2k_decode_frames(const dcm_file *f, const j2k_fragment *frags, int n_frags, int32_t *out,
                             aac_error *err);

/* JPEG 2000 image header (j2k.c): of a codestream (SOC, SIZ) or a JP2 file's jp2c box. */
typedef struct j2k_info {
    uint32_t width, height;   /* Xsiz - XOsiz, Ysiz - YOsiz */
    int components;           /* Csiz */
    int max_depth;            /* largest component precision in bits */
    int is_signed;            /* some component signed */
    int subsampled;           /* some component with XRsiz or YRsiz > 1 */
    uint64_t tiles;           /* tiles of the image grid (OpenJPEG sets up each at header time) */
} j2k_info;
/* 0: *out filled; -1: p does not start a codestream or JP2 file; -2: it does, but its header
 * is malformed or does not fit in n bytes. */
int j2k_read_info(const uint8_t *p, size_t n, j2k_info *out);

/* ---- volume files */
/* NIfTI-1 / NRRD / MetaImage header checked before ITK reads the file (volume_check.c): sizes
 * against the data the file holds and the memory budget, geometry finite and not degenerate,
 * unsupported forms named. AAC_OK or a message naming the file and the problem. */
aac_status vol_check_file(const char *path, aac_error *err);

/* ---- ITK wrapper (itk_io.cpp) */
/* Size and spacing of a volume file from its header, for aac_scan_series. */
aac_status itk_read_info(const char *path, aac_series_info *info, aac_error *err);

/* ---- gzip-compressed files (gz.c) */
/* 1 when the bytes start with the gzip magic (1f 8b). */
int gz_magic(const unsigned char *b, size_t n);
/* 1 when the file at path starts with the gzip magic. */
int gz_is_path(const char *path);
/* Up to cap inflated bytes from the start of a gzip file; the count (0 when unreadable). */
size_t gz_peek(const char *path, unsigned char *buf, size_t cap);
/* The whole file inflated into *out (malloc'ed, *n bytes); a corrupt or truncated stream or
 * one inflating beyond 4 GiB is refused, naming the file. */
aac_status gz_read_all(const char *path, unsigned char **out, size_t *n, aac_error *err);

/* ---- C side */
/* Geometry a header may state (geometry.c): finite, within 1 km, orientation vectors of about
 * unit length (0.9..1.1) and about orthogonal (|cos| < 0.1), spacing 1 nm..1 km. Anything else is
 * treated as absent. */
int geom_position_ok(const double p[3]);
int geom_spacing_ok(double s);
int geom_direction_ok(const double v[3]);
int geom_orientation_ok(const double iop[6]);
/* Bytes one volume may take while it is read (voxels, decoding buffers): AACLIP_MAX_VOLUME_MB
 * (MiB) when set, else half the physical memory. Headers that promise more are refused before
 * anything is allocated. */
size_t vol_memory_budget(void);
/* Raw little-endian samples (as decoded) -> stored values: shifted by HighBit, masked to
 * BitsStored, sign-extended when pixel_rep is 1; planar (RRR..GGG..BBB per frame) data is
 * interleaved; native YBR_FULL_422 (f->ybr == 2: Y1 Y2 Cb Cr) is expanded to Y Cb Cr per pixel.
 * n = frames * rows * cols * spp (out's size; raw holds 2/3 of it for YBR_FULL_422). Returns -1
 * when out of memory. */
int samples_unpack(const void *raw, size_t n, const dcm_file *f, int planar, int frames, int32_t *out);
int scan_add_frame(aac_scan *s, const dcm_frame *fr);  /* 0 on success, -1 out of memory */
/* Siemens CSA header: NumberOfImagesInMosaic and SliceNormalVector (0 when absent). */
void csa_parse(const uint8_t *data, size_t len, int *n_mosaic, int *has_normal, double normal[3]);
/* The same and ProtocolSliceNumber (left as it is when absent). */
void csa_parse_slice(const uint8_t *data, size_t len, int *n_mosaic, int *has_normal, double normal[3],
                     int *protocol_slice);
/* Replaces the mosaic frames of file `fi` by one frame per tile with corrected positions. */
int mosaic_expand(aac_scan *s, int fi, int first_frame);
/* dcm2niix's voxel order for a volume of this geometry (nifti_order.c): axes as in
 * aac_series_info.nifti_axes. acq_3d: a 3-D non-EPI single-volume acquisition of several
 * slices; even: its slices are evenly spaced; z_reversed: dcm2niix stacks the slices against
 * the layout's normal (a mosaic whose tiles run that way; a reversed ProtocolSliceNumber). */
void nifti_order(const double origin[3], const double dir[9], const double spacing[3], const int dim[3],
                 int acq_3d, int even, int z_reversed, int axes[3]);
/* Groups the scan's frames into series and lays out their geometry. */
aac_status series_build(aac_scan *s, aac_error *err);
/* Copies n-1 characters and terminates; trims trailing spaces (DICOM padding). */
void copy_trim(char *dst, size_t cap, const char *src);
/* 1 for a JPEG 2000 transfer syntax (decoded by OpenJPEG, j2k_decode.c, not DCMTK). */
int ts_is_jpeg2000(const char *uid);
/* 1 for a transfer syntax this build decodes. */
int ts_decodable(const char *uid);

#ifdef __cplusplus
}
#endif
#endif
