/* test_scan_pack.c - a series packed (aac_scan_pack) and unpacked in "another process" loads to
 * exactly the volume the scanning process loads: every voxel, the geometry, the per-slice
 * sources, the warnings; its info is the same. On the sample study, a volume file, and (when
 * ../shared is there) the transfer-syntax, enhanced multi-frame and mosaic corpora. Damaged
 * bytes (every truncation, bytes flipped) are refused or load safely, never crash (the
 * sanitizer build runs this too); bytes from another build are refused by name. */
#include "dicom_test.h"

#include <sys/stat.h>

#include "aaclip_dicom.h"
#include "aaclip_synth.h"

static int same_str_list(char **a, int na, char **b, int nb) {
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i])) return 0;
    return 1;
}

/* Every field of two loaded volumes, exactly. */
static void check_same_volume(const aac_volume *a, const aac_volume *b, const char *what) {
    CHECK(!memcmp(a->dim, b->dim, sizeof a->dim), "%s: dims differ", what);
    if (memcmp(a->dim, b->dim, sizeof a->dim)) return;
    const size_t n = aac_volume_voxel_count(a), slots = (size_t)a->dim[2] * a->dim[3];
    CHECK(!memcmp(a->voxels, b->voxels, n * sizeof(float)), "%s: voxels differ", what);
    CHECK(!memcmp(a->origin, b->origin, sizeof a->origin) && !memcmp(a->spacing, b->spacing, sizeof a->spacing) &&
              !memcmp(a->direction, b->direction, sizeof a->direction) && a->t_spacing == b->t_spacing &&
              a->slice_thickness == b->slice_thickness,
          "%s: geometry differs", what);
    CHECK(!strcmp(a->modality, b->modality) && !strcmp(a->series_uid, b->series_uid) &&
              !strcmp(a->study_uid, b->study_uid) && !strcmp(a->frame_of_reference_uid, b->frame_of_reference_uid) &&
              !strcmp(a->patient_id, b->patient_id) && !strcmp(a->series_description, b->series_description) &&
              !strcmp(a->transfer_syntax, b->transfer_syntax) && !strcmp(a->source, b->source) &&
              a->series_number == b->series_number,
          "%s: metadata differs", what);
    CHECK(same_str_list(a->warnings, a->n_warnings, b->warnings, b->n_warnings), "%s: warnings differ", what);
    CHECK((a->slice_uids == NULL) == (b->slice_uids == NULL), "%s: per-slice sources differ", what);
    if (!a->slice_uids || !b->slice_uids) return;
    CHECK(!memcmp(a->slice_uids, b->slice_uids, slots * sizeof *a->slice_uids) &&
              !memcmp(a->slice_frames, b->slice_frames, slots * sizeof *a->slice_frames) &&
              !memcmp(a->slice_sop_classes, b->slice_sop_classes, slots * sizeof *a->slice_sop_classes) &&
              !memcmp(a->slice_positions, b->slice_positions, slots * sizeof *a->slice_positions) &&
              !memcmp(a->slice_orientations, b->slice_orientations, slots * sizeof *a->slice_orientations),
          "%s: per-slice sources differ", what);
    CHECK(same_str_list(a->slice_paths, (int)slots, b->slice_paths, (int)slots), "%s: slice files differ", what);
}

static void check_same_info(const aac_series_info *a, const aac_series_info *b, const char *what) {
    CHECK(!strcmp(a->series_uid, b->series_uid) && !strcmp(a->study_uid, b->study_uid) &&
              !strcmp(a->patient_id, b->patient_id) && !strcmp(a->modality, b->modality) &&
              !strcmp(a->body_part, b->body_part) && !strcmp(a->series_description, b->series_description) &&
              !strcmp(a->manufacturer, b->manufacturer) && !strcmp(a->transfer_syntax, b->transfer_syntax) &&
              !strcmp(a->image_type, b->image_type) && a->series_number == b->series_number &&
              a->echo_number == b->echo_number && a->part == b->part && a->n_files == b->n_files &&
              !memcmp(a->dim, b->dim, sizeof a->dim) && !memcmp(a->spacing, b->spacing, sizeof a->spacing) &&
              !strcmp(a->first_file, b->first_file),
          "%s: series info differs", what);
    CHECK(same_str_list(a->warnings, a->n_warnings, b->warnings, b->n_warnings), "%s: series warnings differ", what);
}

/* Every series of the paths: pack, unpack, compare info and loaded volumes. */
static int round_trip(const char *const *paths, int n) {
    aac_error e = {0};
    aac_scan *s = NULL;
    CHECK_OK(aac_scan_paths(paths, n, &s, &e), &e);
    int checked = 0;
    for (int i = 0; i < aac_scan_series_count(s); i++) {
        const aac_series_info *si = aac_scan_series(s, i);
        void *buf = NULL;
        size_t len = 0;
        CHECK_OK(aac_scan_pack(s, i, &buf, &len, &e), &e);
        aac_scan *u = NULL;
        int index = -1;
        CHECK_OK(aac_scan_unpack(buf, len, &u, &index, &e), &e);
        CHECK(index == i && aac_scan_series_count(u) == 1 && aac_scan_image_count(u) == 0 && aac_scan_note_count(u) == 0,
              "%s: unpacked scan: index %d, %d series", si->first_file, index, aac_scan_series_count(u));
        check_same_info(si, aac_scan_series(u, 0), si->first_file);
        aac_volume *va = NULL, *vb = NULL;
        aac_error ea = {0}, eb = {0};
        const aac_status sa = aac_scan_load(s, i, &va, &ea), sb = aac_scan_load(u, 0, &vb, &eb);
        CHECK(sa == sb, "%s: load status %d here, %d unpacked", si->first_file, sa, sb);
        if (!sa && !sb) check_same_volume(va, vb, si->first_file);
        else CHECK(!strcmp(ea.message, eb.message), "%s: errors differ: '%s' / '%s'", si->first_file, ea.message, eb.message);
        aac_volume_free(va), aac_volume_free(vb);
        aac_scan_free(u);
        free(buf);
        checked++;
    }
    aac_scan_free(s);
    return checked;
}

static const char *shared_or_null(const char *rel) {
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ & 3];
    snprintf(p, 4096, "%s/%s", AACLIP_SHARED_DIR, rel);
    struct stat sb;
    return stat(p, &sb) == 0 ? p : NULL;
}

int main(void) {
    aac_error e = {0};
    /* the sample study (a CT series) and a volume file, present in every clone */
    const char *local[2] = {AACLIP_SOURCE_DIR "/testdata/sample-study/dicom",
                            AACLIP_SOURCE_DIR "/testdata/sample-study/lesion_mask.nii.gz"};
    CHECK(round_trip(local, 2) == 2, "sample study + volume file: 2 series expected");
    /* real scanner data: transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE, big endian),
     * enhanced multi-frame, Siemens mosaics, 4-D series, split series */
    const char *shared[3] = {shared_or_null("dicom/dcm_qa_ts/In"), shared_or_null("dicom/dcm_qa_enh/In"),
                             shared_or_null("dicom/dcm_qa_nih/In")};
    int n_shared = 0;
    for (int i = 0; i < 3; i++)
        if (shared[i]) shared[n_shared++] = shared[i];
    if (n_shared) {
        const int n = round_trip(shared, n_shared);
        printf("shared corpora: %d series packed and unpacked\n", n);
        CHECK(n >= 10, "only %d shared series", n);
    } else {
        printf("note: ../shared/dicom absent: real scanner series not checked\n");
    }

    /* damaged bytes: a small generated series (3 files) */
    const char *study = dt_scratch("scan_pack_study");
    aac_ct_phantom_params pp = aac_ct_phantom_default_params();
    pp.size = 64, pp.slices = 3, pp.n_lesions = 0, pp.fov_mm = 320, pp.slice_mm = 5;
    CHECK_OK(aac_write_sample_study(&pp, study, &e), &e);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/dicom", study);
    const char *paths[1] = {dir};
    aac_scan *s = NULL;
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    void *buf = NULL;
    size_t len = 0;
    CHECK_OK(aac_scan_pack(s, 0, &buf, &len, &e), &e);
    unsigned char *copy = malloc(len);
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++) { /* every truncation */
        memcpy(copy, buf, cut);
        aac_scan *u = NULL;
        refused += aac_scan_unpack(copy, cut, &u, NULL, &e) == AAC_ERR_FORMAT;
        aac_scan_free(u);
    }
    CHECK(refused == (int)len, "%d of %zu truncations refused", refused, len);
    int loaded = 0, flips = 0;
    for (size_t at = 0; at < len; at++) { /* every byte flipped: refused, or loads safely */
        memcpy(copy, buf, len);
        copy[at] ^= 0xA5;
        aac_scan *u = NULL;
        flips++;
        if (aac_scan_unpack(copy, len, &u, NULL, &e) == AAC_OK) {
            aac_volume *v = NULL;
            loaded += aac_scan_load(u, 0, &v, &e) == AAC_OK;
            aac_volume_free(v);
        }
        aac_scan_free(u);
    }
    printf("%zu-byte packed series: %zu truncations refused; %d flipped bytes, %d still loaded\n", len, len, flips, loaded);
    /* another build's bytes: the layout record differs */
    memcpy(copy, buf, len);
    copy[12] ^= 1; /* size of the file struct */
    aac_scan *u = NULL;
    CHECK(aac_scan_unpack(copy, len, &u, NULL, &e) == AAC_ERR_FORMAT && strstr(e.message, "different build"),
          "another build's bytes: %s", e.message);
    CHECK(aac_scan_pack(s, 1, &buf, &len, &e) == AAC_ERR_ARG, "a series that does not exist was packed");
    free(copy), free(buf);
    aac_scan_free(s);
    return tu_finish("test_scan_pack");
}
