/* sample_study.c - the sample study of testdata/: phantom -> DICOM series in dir/dicom/, the
 * ground truth beside it (lesions.json, lesion_mask.nii.gz). Every file is written atomically
 * and depends only on the parameters, so a regenerated study is byte-identical. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aaclip_synth.h"
#include "error.h"
#include "outputs.h"

/* Shortest decimal that reads back as v (glibc's printf and strtod round correctly). */
static void num(double v, char out[32]) {
    if (v == (double)(long long)v && v > -1e15 && v < 1e15) { /* whole numbers without an exponent */
        snprintf(out, 32, "%lld", (long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}
static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void vec(FILE *f, const double *x, int n) {
    char b[32];
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        num(x[i], b);
        fprintf(f, "%s%s", i ? ", " : "", b);
    }
    fputc(']', f);
}

static void write_json(FILE *f, const aac_ct_phantom_params *p, const aac_ct_phantom *ph, uint64_t uid_seed,
                       int enhanced) {
    const aac_volume *v = ph->ct;
    char study[AAC_UID_LEN], series[AAC_UID_LEN], fr[AAC_UID_LEN];
    aac_synth_uid(uid_seed, "study", 0, study);
    aac_synth_uid(uid_seed, "series", 0, series);
    aac_synth_uid(uid_seed, "frame-of-reference", 0, fr);
    char fov[32], sl[32], noise[32], gap[32];
    num(p->fov_mm, fov), num(p->slice_mm, sl), num(p->noise_hu, noise), num(p->lesion_gap_mm, gap);
    fprintf(f,
            "{\n  \"description\": \"Synthetic abdominal CT phantom with planted liver lesions; not patient data\",\n"
            "  \"synthetic\": true,\n"
            "  \"generator\": {\"command\": \"aaclip make-sample-study%s\", \"seed\": %llu, \"size\": %d, "
            "\"slices\": %d, "
            "\"lesions\": %d, \"fov_mm\": %s, \"slice_mm\": %s, \"noise_hu\": %s, \"lesion_gap_mm\": %s},\n"
            "  \"coordinates\": \"LPS, mm (DICOM patient coordinates)\",\n"
            "  \"series\": {\"folder\": \"dicom\", \"files\": %d, \"study_instance_uid\": \"%s\", "
            "\"series_instance_uid\": \"%s\", \"frame_of_reference_uid\": \"%s\"},\n"
            "  \"grid\": {\"dim\": [%d, %d, %d], \"spacing\": ",
            enhanced ? " --enhanced" : "", (unsigned long long)p->seed, p->size, p->slices, p->n_lesions, fov, sl, noise,
            gap, enhanced ? 1 : v->dim[2], study, series, fr,
            v->dim[0], v->dim[1], v->dim[2]);
    vec(f, v->spacing, 3);
    fputs(", \"origin\": ", f);
    vec(f, v->origin, 3);
    fputs(", \"direction\": ", f);
    vec(f, v->direction, 9);
    fputs("},\n  \"mask\": {\"file\": \"lesion_mask.nii.gz\", \"values\": \"0 background, k = lesion with label k\"},\n"
          "  \"lesions\": [",
          f);
    for (int i = 0; i < ph->n_lesions; i++) {
        const aac_ct_lesion *l = &ph->lesions[i];
        const double ml = l->voxels * v->spacing[0] * v->spacing[1] * v->spacing[2] / 1000.0;
        char hu[32], vol[32];
        num(l->hu, hu);
        snprintf(vol, sizeof vol, "%.2f", ml);
        fprintf(f, "%s\n    {\"label\": %d, \"organ\": \"%s\", \"kind\": \"%s\", \"hu\": %s, \"centre_mm\": ",
                i ? "," : "", l->label, l->organ, l->kind, hu);
        vec(f, l->centre, 3);
        fputs(", \"radii_mm\": ", f);
        vec(f, l->radius, 3);
        fprintf(f, ", \"centre_voxel\": [%d, %d, %d], \"voxels\": %d, \"volume_ml\": %s}", l->centre_voxel[0],
                l->centre_voxel[1], l->centre_voxel[2], l->voxels, vol);
    }
    fputs(ph->n_lesions ? "\n  ]\n}\n" : "]\n}\n", f);
}

static aac_status save_json(const char *path, const aac_ct_phantom_params *p, const aac_ct_phantom *ph,
                            uint64_t uid_seed, int enhanced, aac_error *err) {
    char tmp[4096];
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st != AAC_OK) return st;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        st = aac_fail(err, AAC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        fs_discard(tmp);
        return st;
    }
    write_json(f, p, ph, uid_seed, enhanced);
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return fs_commit(tmp, path, err);
}

static aac_status write_study(const aac_ct_phantom_params *params, int enhanced, const char *dir, aac_error *err) {
    if (!dir || !dir[0]) return aac_fail(err, AAC_ERR_ARG, "aac_write_sample_study: no folder");
    const aac_ct_phantom_params p = params ? *params : aac_ct_phantom_default_params();
    char path[4096];
    if (snprintf(path, sizeof path, "%s/lesion_mask.nii.gz", dir) >= (int)sizeof path)
        return aac_fail(err, AAC_ERR_ARG, "%s: path too long", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    aac_ct_phantom *ph = NULL;
    aac_status st = aac_ct_phantom_make(&p, &ph, err);
    if (st != AAC_OK) return st;

    /* Every parameter goes into the UIDs: two different phantoms never share an instance UID. */
    aac_ct_params cp = aac_ct_default_params();
    uint64_t h = mix(0, p.seed);
    h = mix(h, (uint64_t)p.size), h = mix(h, (uint64_t)p.slices), h = mix(h, (uint64_t)p.n_lesions);
    h = mix(h, dbits(p.fov_mm)), h = mix(h, dbits(p.slice_mm)), h = mix(h, dbits(p.noise_hu));
    h = mix(h, dbits(p.lesion_gap_mm)), h = mix(h, (uint64_t)p.hyperdense_every);
    if (enhanced) h = mix(h, 0x456E68616E636564ull); /* "Enhanced": other UIDs than the series' */
    cp.uid_seed = h;

    snprintf(path, sizeof path, "%s/dicom", dir);
    if (enhanced) {
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            st = aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder: %s", path, strerror(errno));
        else {
            snprintf(path, sizeof path, "%s/dicom/enhanced_ct.dcm", dir);
            st = aac_write_enhanced_ct(ph->ct, &cp, path, err);
        }
    } else {
        st = aac_write_ct_series(ph->ct, &cp, path, err);
    }
    if (st == AAC_OK) {
        snprintf(path, sizeof path, "%s/lesions.json", dir);
        st = save_json(path, &p, ph, cp.uid_seed, enhanced, err);
    }
    if (st == AAC_OK) {
        char tmp[4096];
        snprintf(path, sizeof path, "%s/lesion_mask.nii.gz", dir);
        if ((st = fs_tmp_path(path, tmp, sizeof tmp, err)) == AAC_OK) {
            if ((st = aac_volume_write_nifti(ph->labels, tmp, err)) == AAC_OK) st = fs_commit(tmp, path, err);
            else fs_discard(tmp);
        }
    }
    aac_ct_phantom_free(ph);
    return st;
}

aac_status aac_write_sample_study(const aac_ct_phantom_params *p, const char *dir, aac_error *err) {
    return write_study(p, 0, dir, err);
}

aac_status aac_write_sample_study_enhanced(const aac_ct_phantom_params *p, const char *dir, aac_error *err) {
    return write_study(p, 1, dir, err);
}
