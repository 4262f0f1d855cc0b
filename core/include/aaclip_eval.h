/* aaclip_eval.h - evaluation metrics of AA-CLIP: exact ROC AUC and average precision (ties as
 * scikit-learn's roc_auc_score / average_precision_score treat them) and the reference's
 * evaluation protocol: set-level min-max normalisation of maps and scores, the domain rule for
 * the image score, per class and mean. Same conventions as aaclip.h. */
#ifndef AACLIP_EVAL_H
#define AACLIP_EVAL_H

#include "aaclip.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Binary ROC AUC and average precision of scores against labels (nonzero = positive), as
 * scikit-learn computes them: every distinct score is one threshold (tied scores move the curve
 * diagonally), AUC is the trapezoid area, AP = sum over thresholds of (R_k - R_{k-1}) P_k.
 * AUC is computed from integer counts (exact up to one final rounding). Undefined cases:
 * AUC is NaN when only one class is present (scikit-learn raises); AP is 0 without positives
 * (scikit-learn's value, with its warning). NaN scores are an AAC_ERR_ARG.
 * Works on a copy sorted by radix sort: 8 bytes of scratch per sample. */
aac_status aac_binary_metrics(const float *scores, const uint8_t *labels, size_t n, double *auroc,
                              double *ap, aac_error *err);

/* ------------------------------------------------------------------ the evaluation protocol */
/* An accumulator over a test set. Per image: the raw anomaly map (sum over levels, width x height),
 * its mask (nonzero = lesion; NULL = none), the raw detection score and the image label. Each
 * class is its own test set, as in the reference's per-class loop: its maps are min-max
 * normalised over all its pixels and its detection scores over its images (float32, as the
 * reference's numpy arrays), then
 *   image score = max of the normalised map                        (medical)
 *               = 0.5 * max normalised map + 0.5 * normalised score (industrial).
 * A set whose maps (scores) are all equal normalises to 0.
 * Memory: the pixels are kept as 4-byte scores split by label (the normalisation only merges
 * values, never reorders them, so it is applied at the end); computing a class needs 4 more
 * bytes per pixel of its larger half for the sort. For the lesion-wise metric each image is also
 * kept quantised to 16 bits over its own range, with its mask when it has lesion pixels (2-3
 * bytes per pixel). 100 images of 518 x 518 (26.8 M pixels): about 160 MB kept + up to 107 MB
 * while sorting. */
typedef struct aac_eval aac_eval;

typedef struct aac_eval_class {
    char name[128];
    aac_domain domain;
    int n_images, n_anomalous;   /* images, images with label 1 */
    int64_t n_pixels, n_lesion_pixels;
    double pixel_auroc, pixel_ap;  /* NaN when undefined (no lesion pixel, or no normal one) */
    double image_auroc, image_ap;
    /* Best pixel F1 (= Dice of the lesion pixels) over thresholds "normalised map >= t", and the
     * highest t that reaches it (NaN without lesion pixels); with map_low / map_high, the raw
     * set minimum and maximum of the normalisation, the calibration `aaclip eval --calibrate`
     * stores in a bundle. */
    double pixel_f1_max, pixel_f1_threshold;
    double map_low, map_high;
    /* Lesion-wise detection per image, the 2-D form of the rule `aaclip score` reports 3-D
     * regions by: on thresholds t = (float)k / 100, k = 1..100, of the normalised map, a region
     * is a connected component (8-neighbours) of the pixels >= t, true when its centroid
     * (rounded to a pixel) lies in a lesion of the mask, false when outside every lesion; a
     * lesion (mask component) is found when a true region is centred in it. Lesions smaller
     * than aac_eval_set_min_lesion_pixels are below the map's resolution: not counted, and
     * regions centred in them count neither way. region_f1_max is the best F1 of precision
     * (true / all regions) and recall (found / lesions), at the highest t reaching it,
     * region_threshold; with the precision, recall and the true + false regions there
     * (n_regions). All NaN without a counted lesion; F1 0 and the rest NaN when no region is
     * ever centred in a lesion. */
    double region_f1_max, region_threshold, region_precision, region_recall;
    int64_t n_lesions, n_regions;
} aac_eval_class;

aac_status aac_eval_new(aac_eval **out, aac_error *err);
void aac_eval_free(aac_eval *e);
/* Lesions below this many pixels are not counted by the lesion-wise metric (default 0: all).
 * `aaclip eval` uses one patch of the model's grid at the run size. */
aac_status aac_eval_set_min_lesion_pixels(aac_eval *e, int64_t pixels, aac_error *err);
/* Adds one image to the set of class_name (created at first use with `domain`; a later
 * different domain for the same class is an AAC_ERR_ARG). map and mask have width x height
 * values, row-major. */
aac_status aac_eval_add(aac_eval *e, const char *class_name, aac_domain domain, const float *map,
                        const uint8_t *mask, int width, int height, float score_det, int label, aac_error *err);
/* Computes every class (in order of first appearance). *classes is owned by e and valid until
 * the next aac_eval_compute or aac_eval_free. mean: averages over the classes where a value is defined (name "mean",
 * counts summed). */
aac_status aac_eval_compute(aac_eval *e, const aac_eval_class **classes, int *n_classes,
                            aac_eval_class *mean, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
