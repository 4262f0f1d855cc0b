/* phantom.c - training and test data cut from the 3-D abdominal CT phantom of aaclip_synth.h:
 * the demo model learns on exactly the kind of slice `aaclip score` later feeds it from the
 * sample study (same phantom, same ingestion normalisation), on different seeds. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aaclip_synth.h"
#include "data_internal.h"
#include "error.h"
#include "fsutil.h"

aac_phantom_set_params aac_phantom_set_default_params(void) {
    aac_phantom_set_params p = {.seed = 1, .volumes = 8, .size = 256, .slices = 32, .min_lesions = 1,
                                .max_lesions = 6, .noise_hu = 10, .lesion_gap_mm = 10, .class_name = "phantom",
                                .jsonl_name = "data.jsonl"};
    return p;
}

/* mkdir -p */
static int make_dir(const char *p) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *q = buf + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *q = '/';
        }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Phantom parameters of volume i: its own seed and lesion count, everything else from p. */
static aac_ct_phantom_params volume_params(const aac_phantom_set_params *p, int i) {
    aac_ct_phantom_params q = aac_ct_phantom_default_params();
    q.seed = aac_seed_mix(p->seed, 0x3d, (uint64_t)i, 0);
    q.size = p->size;
    q.slices = p->slices;
    q.noise_hu = p->noise_hu;
    q.lesion_gap_mm = p->lesion_gap_mm;
    q.n_lesions = p->min_lesions + (int)(aac_seed_mix(q.seed, 0x1e5, 0, 0) % (uint64_t)(p->max_lesions - p->min_lesions + 1));
    return q;
}

/* Writes the slices of one phantom and their dataset lines. */
static aac_status write_volume(const char *dir, const aac_phantom_set_params *p, int vi, FILE *js, int *n_lines,
                               int *n_anomalous, aac_error *err) {
    aac_ct_phantom_params q = volume_params(p, vi);
    aac_ct_phantom *ph = NULL;
    aac_status s = aac_ct_phantom_make(&q, &ph, err);
    if (s) return s;
    aac_norm norm;
    aac_norm_params np = aac_norm_default_params(); /* what `aaclip score` uses by default */
    np.axis = 2; /* axial, as a DICOM series of the phantom is read (the volume alone has no slice
                    UIDs, and with pixels coarser than 3 mm the heuristic would pick another axis) */
    if ((s = aac_volume_norm(ph->ct, 0, &np, &norm, err))) goto done;
    const int X = ph->ct->dim[0], Y = ph->ct->dim[1], Z = ph->ct->dim[2];
    aac_image img = {0}, mask = {0};
    if ((s = aac_image_alloc(&img, X, Y, 1, "phantom slice", err)) || (s = aac_image_alloc(&mask, X, Y, 1, "phantom mask", err)))
        goto slices_done;
    for (int z = 0; z < Z && !s; z++) {
        if ((s = aac_volume_slice_u8(ph->ct, &norm, 0, z, img.px, err))) break;
        const float *lab = ph->labels->voxels + (size_t)z * X * Y;
        int lesion = 0;
        for (size_t k = 0; k < (size_t)X * Y; k++) {
            mask.px[k] = lab[k] > 0 ? 255 : 0;
            lesion |= mask.px[k];
        }
        lesion = lesion != 0;
        char rel_img[64], rel_mask[64], full[4200];
        snprintf(rel_img, sizeof rel_img, "images/v%04d_z%03d.png", vi, z);
        snprintf(rel_mask, sizeof rel_mask, "masks/v%04d_z%03d.png", vi, z);
        snprintf(full, sizeof full, "%s/%s", dir, rel_img);
        s = aac_image_write_png(full, &img, err);
        if (!s && lesion) {
            snprintf(full, sizeof full, "%s/%s", dir, rel_mask);
            s = aac_image_write_png(full, &mask, err);
        }
        if (!s) {
            fprintf(js, "{\"image_path\": \"%s\", \"label\": %d, \"class_name\": \"%s\", \"mask_path\": \"%s\"}\n",
                    rel_img, lesion, p->class_name, lesion ? rel_mask : "");
            (*n_lines)++;
            *n_anomalous += lesion;
        }
    }
slices_done:
    aac_image_release(&img);
    aac_image_release(&mask);
done:
    aac_ct_phantom_free(ph);
    return s;
}

aac_status aac_phantom_dataset_write(const char *dir, const aac_phantom_set_params *params, int *n_slices,
                                     int *n_anomalous, aac_error *err) {
    const aac_phantom_set_params p = params ? *params : aac_phantom_set_default_params();
    if (!dir || !p.class_name || !p.jsonl_name || p.volumes < 1 || p.min_lesions < 0 ||
        p.max_lesions < p.min_lesions || p.max_lesions > AAC_CT_PHANTOM_MAX_LESIONS)
        return aac_fail(err, AAC_ERR_ARG, "phantom dataset: bad arguments (volumes %d, lesions %d..%d, at most %d)",
                        p.volumes, p.min_lesions, p.max_lesions, AAC_CT_PHANTOM_MAX_LESIONS);
    for (const char *c = p.class_name; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            return aac_fail(err, AAC_ERR_ARG, "class name '%s': quotes, backslashes and control characters "
                            "are not allowed", p.class_name);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/images", dir);
    if (make_dir(dir) || make_dir(path)) return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/masks", dir);
    if (make_dir(path)) return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", dir, p.jsonl_name);
    aac_status s = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (s) return s;
    FILE *js = fopen(tmp, "w");
    if (!js) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    int lines = 0, anomalous = 0;
    for (int i = 0; i < p.volumes && !s; i++) s = write_volume(dir, &p, i, js, &lines, &anomalous, err);
    const int ok = fflush(js) == 0;
    if (fclose(js) != 0 || !ok) s = s ? s : aac_fail(err, AAC_ERR_IO, "%s: cannot write", tmp);
    if (s) fs_discard(tmp);
    else s = fs_commit(tmp, path, err);
    if (!s && n_slices) *n_slices = lines;
    if (!s && n_anomalous) *n_anomalous = anomalous;
    return s;
}
