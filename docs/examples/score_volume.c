/* score_volume.c - libaaclip from a program of your own: open a model bundle, score one volume
 * (a NIfTI/NRRD file or a DICOM series folder) in memory, write the label map and, for DICOM
 * input, a DICOM Segmentation that references the source images.
 *
 *   score_volume BUNDLE INPUT OUTDIR [CLASS_TEXT]
 *
 * Build against the installed library (docs/examples/README.md):
 *   cc score_volume.c $(pkg-config --cflags --libs aaclip) -o score_volume
 * or with CMake: find_package(aaclip) and target_link_libraries(score_volume aaclip::aaclip).
 *
 * A SEG is a DICOM object about DICOM images (it names the source instances, their study and
 * frame of reference), so it is written for DICOM input only; for a volume file the label map
 * (NIfTI) is the result. `aaclip score` does all of this and more for whole folders of studies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aaclip.h>
#include <aaclip_score.h>

static int fail(const char *what, const aac_error *err) {
    fprintf(stderr, "score_volume: %s: %s\n", what, err->message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: score_volume BUNDLE INPUT OUTDIR [CLASS_TEXT]   (libaaclip %s)\n", aac_version());
        return 2;
    }
    const char *bundle = argv[1], *input = argv[2], *out_dir = argv[3];
    aac_error err;
    int rc = 1;

    /* the model and its tokenizer, as the bundle describes them */
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    aac_model_params mp = aac_model_default_params();
    if (aac_model_open_bundle(bundle, &mp, &m, &tok, &err)) return fail(bundle, &err);

    /* a scorer: class text, domain, thresholds and calibration resolved, text anchors computed */
    aac_score_params sp = aac_score_default_params();
    if (argc > 4) sp.class_text = argv[4];
    aac_scorer *sc = NULL;
    aac_scan *scan = NULL;
    aac_volume *v = NULL;
    float *map = NULL;
    aac_region *regions = NULL;
    int n_regions = 0;
    if (aac_scorer_open(m, tok, bundle, &sp, &sc, &err)) {
        rc = fail("scorer", &err);
        goto out;
    }

    /* the input: a volume file or a DICOM folder, the first series found */
    const char *paths[1] = {input};
    if (aac_scan_paths(paths, 1, &scan, &err) || aac_scan_series_count(scan) < 1) {
        rc = fail(input, scan ? &(aac_error){AAC_ERR_MISSING, "no image series found"} : &err);
        goto out;
    }
    if (aac_scan_load(scan, 0, &v, &err)) {
        rc = fail(input, &err);
        goto out;
    }

    /* score it in memory: the raw map on the volume's grid, ready for the writers */
    aac_results res;
    map = malloc(sizeof(float) * aac_volume_voxel_count(v) / (size_t)v->dim[3]);
    if (!map || aac_score_volume(sc, v, 0, map, NULL, &res, NULL, &err)) {
        rc = fail("scoring", map ? &err : &(aac_error){AAC_ERR_NOMEM, "out of memory"});
        goto out;
    }
    const int level = aac_scorer_region_level(sc) + 1; /* the threshold regions are reported at */
    if (aac_regions(&res, level, 26, &regions, &n_regions, &err)) {
        rc = fail("regions", &err);
        goto out;
    }

    /* the results: a label map for any input, a DICOM SEG next to DICOM input */
    char path[4096];
    snprintf(path, sizeof path, "%s/label_map.nii.gz", out_dir);
    if (aac_write_result_image(&res, AAC_IMAGE_LABEL_MAP, path, &err)) {
        rc = fail(path, &err);
        goto out;
    }
    if (v->slice_paths) {
        aac_output_params op = aac_output_default_params();
        op.model_name = bundle;
        snprintf(path, sizeof path, "%s/seg.dcm", out_dir);
        if (aac_write_seg(&res, &op, NULL, path, &err)) {
            rc = fail(path, &err);
            goto out;
        }
    }
    double volume = 0;
    for (int k = 0; k < n_regions; k++) volume += regions[k].volume_mm3;
    const aac_score_params *used = aac_scorer_params(sc);
    printf("score %.7g regions %d volume_ml %.3f threshold %.4g class \"%s\" seg %s\n", res.series_score, n_regions,
           volume / 1000.0, used->n_thresholds ? used->thresholds[level - 1] : AAC_DEFAULT_THRESHOLD,
           used->class_text, v->slice_paths ? "yes" : "no");
    for (int k = 0; k < n_regions; k++)
        printf("region %d: %zu voxels, %.1f mm3, max %.4g, centroid LPS %.1f %.1f %.1f\n", k + 1, regions[k].n_voxels,
               regions[k].volume_mm3, regions[k].max_score, regions[k].centroid[0], regions[k].centroid[1],
               regions[k].centroid[2]);
    rc = 0;
out:
    free(regions);
    free(map);
    aac_volume_free(v);
    aac_scan_free(scan);
    aac_scorer_free(sc);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return rc;
}
