/* region_metrics.h - lesion-wise detection counts over a grid of thresholds (internal to the
 * evaluation in metrics.c). A region is a connected component (8-neighbours) of the pixels at or
 * above a threshold; it is a true region when its centroid, rounded to a pixel, lies in a lesion
 * (the acceptance rule of `aaclip score`), a false region when it lies outside every lesion. A
 * lesion (component of the mask) is found when a true region's centroid lies in it. Per 2-D
 * image: `aaclip score` applies the same rule to 3-D regions of a volume. Lesions
 * smaller than min_lesion_pixels are below the map's resolution: they are not counted, and
 * regions centred in them count neither way. */
#ifndef AAC_REGION_METRICS_H
#define AAC_REGION_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Thresholds k / AAC_REGION_LEVELS, k = 1..AAC_REGION_LEVELS, on the normalised map. */
#define AAC_REGION_LEVELS 100

typedef struct region_counts {
    int64_t true_regions[AAC_REGION_LEVELS + 1];
    int64_t false_regions[AAC_REGION_LEVELS + 1];
    int64_t found[AAC_REGION_LEVELS + 1]; /* lesions found at level k */
    int64_t lesions;                      /* lesions counted (>= min_lesion_pixels) */
} region_counts;

/* Scratch reused from image to image (zero-initialise; region_scratch_free releases it). */
typedef struct region_scratch {
    int32_t *buf;
    int64_t *sums;
    size_t npix;
} region_scratch;

void region_scratch_free(region_scratch *s);

/* Adds one width x height image (row-major): level[i] in 0..AAC_REGION_LEVELS is the highest
 * threshold level pixel i reaches (0: none), mask nonzero = lesion (NULL: no lesion).
 * Returns -1 when out of memory, else 0. */
int region_counts_add(region_counts *c, region_scratch *s, const uint8_t *level, const uint8_t *mask, int width,
                      int height, int64_t min_lesion_pixels);

/* The level of the best lesion-wise F1 (2 P R / (P + R), precision P = true / all regions,
 * recall R = found / lesions; the highest level among equal maxima), with its F1, precision and
 * recall; 0 and NaN values when no lesion is counted; 0, F1 0 and NaN precision and recall when
 * no region is ever centred in a lesion. */
int region_best_level(const region_counts *c, double *f1, double *precision, double *recall);

#endif
