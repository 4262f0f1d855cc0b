/* metrics.c - exact ROC AUC / average precision (scikit-learn's tie handling) and the
 * reference's evaluation protocol (set-level min-max normalisation, domain rule). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_eval.h"
#include "error.h"
#include "region_metrics.h"

/* ------------------------------------------------------------------ sorting */

/* Order-preserving float -> u32 map (-0.0 counts as +0.0, so equal scores tie). */
static uint32_t sort_key(float f) {
    if (f == 0.0f) f = 0.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Inverse of sort_key. */
static float key_value(uint32_t k) {
    const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* LSD radix sort, ascending, 8 bits a pass; passes where every key has the same digit are
 * skipped. tmp holds n keys. */
static void radix_sort(uint32_t *a, uint32_t *tmp, size_t n) {
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xff) + 1]++;
        int single = 0;
        for (int d = 1; d <= 256; d++) single |= count[d] == n;
        if (single) continue;
        for (int d = 0; d < 256; d++) count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++) tmp[count[(a[i] >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* Walks both sorted key lists from the highest score down, one step per distinct score. The
 * ROC area is accumulated in units of 1 / (2 P N) as an integer: each tie group adds
 * dfp * (2 tp_before + dtp), the trapezoid under the diagonal move, so ties count one half as
 * in scikit-learn; P, N < 2^31 keep the sum below 2^63. */
static void metrics_sorted(const uint32_t *pos, size_t P, const uint32_t *neg, size_t N, double *auroc,
                           double *ap, double *f1_max, uint32_t *f1_key) {
    size_t i = P, j = N;
    uint64_t tp = 0, fp = 0, area = 0;
    double sum_ap = 0, best = P ? 0 : NAN;
    uint32_t best_key = 0;
    while (i > 0 || j > 0) {
        uint32_t k = i > 0 && (j == 0 || pos[i - 1] >= neg[j - 1]) ? pos[i - 1] : neg[j - 1];
        uint64_t dtp = 0, dfp = 0;
        while (i > 0 && pos[i - 1] == k) i--, dtp++;
        while (j > 0 && neg[j - 1] == k) j--, dfp++;
        area += dfp * (2 * tp + dtp);
        tp += dtp;
        fp += dfp;
        if (dtp) sum_ap += ((double)dtp / (double)P) * ((double)tp / (double)(tp + fp));
        /* F1 of "score >= k": 2 TP / (2 TP + FP + FN); strict '>' keeps the highest threshold of a tie */
        const double f1 = P ? 2.0 * (double)tp / (double)(tp + fp + P) : NAN;
        if (P && f1 > best) best = f1, best_key = k;
    }
    if (f1_max) *f1_max = best;
    if (f1_key) *f1_key = best_key;
    if (auroc) *auroc = P && N ? (double)area / (2.0 * (double)P * (double)N) : NAN;
    if (ap) *ap = sum_ap; /* 0 without positives, as scikit-learn */
}

/* Sorts both halves (in place, keys) and computes the metrics (f1_max, f1_key may be NULL). */
static aac_status metrics_keys(uint32_t *pos, size_t P, uint32_t *neg, size_t N, double *auroc, double *ap,
                               double *f1_max, uint32_t *f1_key, aac_error *err) {
    const size_t big = P > N ? P : N;
    uint32_t *tmp = malloc((big ? big : 1) * sizeof *tmp);
    if (!tmp) return aac_fail(err, AAC_ERR_NOMEM, "out of memory sorting %zu scores", big);
    radix_sort(pos, tmp, P);
    radix_sort(neg, tmp, N);
    free(tmp);
    metrics_sorted(pos, P, neg, N, auroc, ap, f1_max, f1_key);
    return AAC_OK;
}

aac_status aac_binary_metrics(const float *scores, const uint8_t *labels, size_t n, double *auroc,
                              double *ap, aac_error *err) {
    if ((!scores || !labels) && n) return aac_fail(err, AAC_ERR_ARG, "aac_binary_metrics: NULL argument");
    if (n >= ((size_t)1 << 31)) return aac_fail(err, AAC_ERR_ARG, "aac_binary_metrics: %zu samples (max 2^31)", n);
    size_t P = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i])) return aac_fail(err, AAC_ERR_ARG, "aac_binary_metrics: score %zu is NaN", i);
        P += labels[i] != 0;
    }
    uint32_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return aac_fail(err, AAC_ERR_NOMEM, "out of memory (%zu scores)", n);
    size_t ip = 0, in = P;
    for (size_t i = 0; i < n; i++) keys[labels[i] ? ip++ : in++] = sort_key(scores[i]);
    aac_status s = metrics_keys(keys, P, keys + P, n - P, auroc, ap, NULL, NULL, err);
    free(keys);
    return s;
}

/* ------------------------------------------------------------------ evaluation protocol */

typedef struct fvec { float *v; size_t n, cap; } fvec;

static int fvec_push(fvec *a, const float *v, size_t n) {
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->n + n) cap *= 2;
        float *p = realloc(a->v, cap * sizeof *p);
        if (!p) return -1;
        a->v = p, a->cap = cap;
    }
    memcpy(a->v + a->n, v, n * sizeof *v);
    a->n += n;
    return 0;
}

/* An image kept for the lesion-wise metric: its map quantised to 16 bits over its own range
 * (a step of range / 65535, far below the 1 / AAC_REGION_LEVELS threshold grid) and its mask
 * (NULL without lesion pixels). */
typedef struct kept_image {
    uint16_t *q;
    uint8_t *mask;
    int width, height;
    float mn, mx;
} kept_image;

typedef struct eval_set {
    aac_eval_class r;
    kept_image *img;        /* n_images entries */
    int img_cap;
    fvec pos, neg;          /* raw map values of lesion / normal pixels (keys after computing) */
    float mn, mx;           /* over all pixels of the set */
    fvec map_max, det, lab; /* per image: raw map maximum, raw detection score, label */
    int done;               /* pos/neg hold sorted keys, r is final */
} eval_set;

struct aac_eval {
    eval_set *sets;
    int n, cap;
    int64_t min_lesion_pixels;
    aac_eval_class *out;
};

static void drop_kept_images(eval_set *s) {
    for (int k = 0; s->img && k < s->r.n_images; k++) free(s->img[k].q), free(s->img[k].mask);
    free(s->img);
    s->img = NULL, s->img_cap = 0;
}

aac_status aac_eval_new(aac_eval **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_eval_new: NULL argument");
    *out = calloc(1, sizeof **out);
    return *out ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
}

void aac_eval_free(aac_eval *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++) {
        eval_set *s = &e->sets[i];
        free(s->pos.v), free(s->neg.v), free(s->map_max.v), free(s->det.v), free(s->lab.v);
        drop_kept_images(s);
    }
    free(e->sets);
    free(e->out);
    free(e);
}

static eval_set *find_set(aac_eval *e, const char *name, aac_domain domain, aac_error *err) {
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->sets[i].r.name, name)) {
            if (e->sets[i].r.domain != domain) {
                aac_fail(err, AAC_ERR_ARG, "class '%s' added with two domains", name);
                return NULL;
            }
            return &e->sets[i];
        }
    if (e->n == e->cap) {
        int cap = e->cap ? 2 * e->cap : 8;
        eval_set *p = realloc(e->sets, cap * sizeof *p);
        if (!p) {
            aac_fail(err, AAC_ERR_NOMEM, "out of memory");
            return NULL;
        }
        e->sets = p, e->cap = cap;
    }
    eval_set *s = &e->sets[e->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->r.name, sizeof s->r.name, "%s", name);
    s->r.domain = domain;
    s->mn = INFINITY, s->mx = -INFINITY;
    return s;
}

aac_status aac_eval_set_min_lesion_pixels(aac_eval *e, int64_t pixels, aac_error *err) {
    if (!e || pixels < 0) return aac_fail(err, AAC_ERR_ARG, "aac_eval_set_min_lesion_pixels: bad argument");
    e->min_lesion_pixels = pixels;
    return AAC_OK;
}

/* Keeps the image for the lesion-wise metric (see kept_image). */
static int keep_image(eval_set *s, const float *map, const uint8_t *mask, int width, int height, float mn, float mx) {
    if (s->r.n_images == s->img_cap) {
        const int cap = s->img_cap ? 2 * s->img_cap : 64;
        kept_image *p = realloc(s->img, sizeof *p * (size_t)cap);
        if (!p) return -1;
        s->img = p, s->img_cap = cap;
    }
    const size_t npix = (size_t)width * (size_t)height;
    kept_image *k = &s->img[s->r.n_images];
    memset(k, 0, sizeof *k);
    k->q = malloc(npix * sizeof *k->q);
    if (!k->q) return -1;
    size_t lesion = 0;
    for (size_t i = 0; mask && i < npix; i++) lesion += mask[i] != 0;
    if (lesion && !(k->mask = malloc(npix))) {
        free(k->q), k->q = NULL;
        return -1;
    }
    if (lesion) memcpy(k->mask, mask, npix);
    k->width = width, k->height = height, k->mn = mn, k->mx = mx;
    const float scale = mx > mn ? 65535.0f / (mx - mn) : 0.0f;
    for (size_t i = 0; i < npix; i++) k->q[i] = (uint16_t)floorf((map[i] - mn) * scale + 0.5f);
    return 0;
}

aac_status aac_eval_add(aac_eval *e, const char *class_name, aac_domain domain, const float *map,
                        const uint8_t *mask, int width, int height, float score_det, int label, aac_error *err) {
    if (!e || !class_name || !map || width <= 0 || height <= 0 || (int64_t)width * height > INT32_MAX)
        return aac_fail(err, AAC_ERR_ARG, "aac_eval_add: missing argument or bad size %d x %d", width, height);
    const size_t npix = (size_t)width * (size_t)height;
    if (!isfinite(score_det))
        return aac_fail(err, AAC_ERR_ARG, "aac_eval_add: class '%s': detection score %g", class_name, score_det);
    eval_set *s = find_set(e, class_name, domain, err);
    if (!s) return err ? err->code : AAC_ERR_ARG;
    if (s->done) return aac_fail(err, AAC_ERR_ARG, "aac_eval_add: class '%s' was already computed", class_name);
    float mx = -INFINITY, mn = INFINITY;
    for (size_t i = 0; i < npix; i++) {
        if (!isfinite(map[i]))
            return aac_fail(err, AAC_ERR_ARG, "aac_eval_add: class '%s': map value %g at pixel %zu", class_name, map[i], i);
        if (map[i] > mx) mx = map[i];
        if (map[i] < mn) mn = map[i];
    }
    if (keep_image(s, map, mask, width, height, mn, mx))
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory adding an image of class '%s'", class_name);
    /* lesion and normal pixels go to their own arrays, in runs */
    int bad = 0;
    for (size_t i = 0; i < npix && !bad;) {
        const int pos = mask && mask[i];
        size_t j = i + 1;
        while (j < npix && (mask && mask[j]) == pos) j++;
        bad = fvec_push(pos ? &s->pos : &s->neg, map + i, j - i);
        i = j;
    }
    const float lab = (float)(label != 0);
    if (bad || fvec_push(&s->map_max, &mx, 1) || fvec_push(&s->det, &score_det, 1) || fvec_push(&s->lab, &lab, 1))
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory adding an image of class '%s'", class_name);
    if (mn < s->mn) s->mn = mn;
    if (mx > s->mx) s->mx = mx;
    s->r.n_images++;
    s->r.n_anomalous += label != 0;
    return AAC_OK;
}

/* (x - mn) / (mx - mn) in float32, as the reference's numpy arrays; 0 when mx == mn. */
static float norm01(float x, float mn, float d) { return d > 0 ? (x - mn) / d : 0.0f; }

/* Lesion-wise detection on the kept images, normalised as the pixel metrics are. */
static aac_status compute_regions(eval_set *s, int64_t min_lesion_pixels, aac_error *err) {
    const float d = s->mx - s->mn;
    region_counts *c = calloc(1, sizeof *c);
    region_scratch scratch = {0};
    uint8_t *level = NULL;
    size_t level_cap = 0;
    int bad = !c;
    /* level = the number of thresholds (float)k / LEVELS <= p, exactly as the comparisons go */
    float thr[AAC_REGION_LEVELS + 2];
    for (int k = 0; k <= AAC_REGION_LEVELS; k++) thr[k] = (float)k / (float)AAC_REGION_LEVELS;
    thr[AAC_REGION_LEVELS + 1] = INFINITY;
    for (int i = 0; i < s->r.n_images && !bad; i++) {
        const kept_image *k = &s->img[i];
        const size_t npix = (size_t)k->width * (size_t)k->height;
        if (npix > level_cap) {
            uint8_t *p = realloc(level, npix);
            if (!p) {
                bad = 1;
                break;
            }
            level = p, level_cap = npix;
        }
        for (size_t j = 0; j < npix; j++) {
            /* the lerp returns the image's minimum and maximum exactly */
            const float t = (float)k->q[j] / 65535.0f, raw = k->mn * (1.0f - t) + k->mx * t;
            const float p = norm01(raw, s->mn, d);
            const float f = floorf(p * (float)AAC_REGION_LEVELS);
            int l = f < 0 ? 0 : f > AAC_REGION_LEVELS ? AAC_REGION_LEVELS : (int)f;
            while (p >= thr[l + 1]) l++;
            while (l > 0 && p < thr[l]) l--;
            level[j] = (uint8_t)l;
        }
        bad = region_counts_add(c, &scratch, level, k->mask, k->width, k->height, min_lesion_pixels);
    }
    if (!bad) {
        const int best = region_best_level(c, &s->r.region_f1_max, &s->r.region_precision, &s->r.region_recall);
        s->r.region_threshold = best ? (double)thr[best] : NAN;
        s->r.n_lesions = c->lesions;
        s->r.n_regions = best ? c->true_regions[best] + c->false_regions[best] : 0;
    }
    free(c), free(level);
    region_scratch_free(&scratch);
    if (!bad) drop_kept_images(s); /* not needed again: a set is computed once */
    return bad ? aac_fail(err, AAC_ERR_NOMEM, "out of memory computing the lesion-wise metric of class '%s'", s->r.name)
               : AAC_OK;
}

static aac_status compute_set(eval_set *s, int64_t min_lesion_pixels, aac_error *err) {
    const float d = s->mx - s->mn;
    aac_status st0 = compute_regions(s, min_lesion_pixels, err);
    if (st0) return st0;
    /* float -> key in place (both 4 bytes; memcpy gives the storage its new type) */
    for (size_t i = 0; i < s->pos.n; i++) {
        const uint32_t k = sort_key(norm01(s->pos.v[i], s->mn, d));
        memcpy(&s->pos.v[i], &k, 4);
    }
    for (size_t i = 0; i < s->neg.n; i++) {
        const uint32_t k = sort_key(norm01(s->neg.v[i], s->mn, d));
        memcpy(&s->neg.v[i], &k, 4);
    }
    uint32_t *pos = (uint32_t *)(void *)s->pos.v, *neg = (uint32_t *)(void *)s->neg.v;
    s->r.n_pixels = (int64_t)(s->pos.n + s->neg.n);
    s->r.n_lesion_pixels = (int64_t)s->pos.n;
    uint32_t f1_key = 0;
    aac_status st = metrics_keys(pos, s->pos.n, neg, s->neg.n, &s->r.pixel_auroc, &s->r.pixel_ap,
                                 &s->r.pixel_f1_max, &f1_key, err);
    if (st) return st;
    s->r.pixel_f1_threshold = s->pos.n ? key_value(f1_key) : NAN;
    s->r.map_low = s->mn;
    s->r.map_high = s->mx;
    if (!s->pos.n) s->r.pixel_ap = NAN; /* no lesion pixel: nothing to rank */
    /* image scores */
    const int n = s->r.n_images;
    float smn = INFINITY, smx = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (s->det.v[i] < smn) smn = s->det.v[i];
        if (s->det.v[i] > smx) smx = s->det.v[i];
    }
    if (n <= 0) return aac_fail(err, AAC_ERR_ARG, "no images to evaluate");
    float *score = malloc(sizeof(float) * (size_t)n);
    uint8_t *lab = malloc((size_t)n);
    if (!score || !lab) {
        free(score), free(lab);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const float m = norm01(s->map_max.v[i], s->mn, d);
        score[i] = aac_image_score(s->r.domain, m, norm01(s->det.v[i], smn, smx - smn));
        lab[i] = s->lab.v[i] != 0;
    }
    st = aac_binary_metrics(score, lab, (size_t)n, &s->r.image_auroc, &s->r.image_ap, err);
    if (!st && !s->r.n_anomalous) s->r.image_ap = NAN;
    free(score), free(lab);
    if (!st) s->done = 1;
    return st;
}

aac_status aac_eval_compute(aac_eval *e, const aac_eval_class **classes, int *n_classes, aac_eval_class *mean,
                            aac_error *err) {
    if (!e) return aac_fail(err, AAC_ERR_ARG, "aac_eval_compute: NULL argument");
    aac_eval_class *out = realloc(e->out, sizeof *out * (e->n ? e->n : 1));
    if (!out) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    e->out = out;
    for (int i = 0; i < e->n; i++) {
        if (!e->sets[i].done) {
            aac_status s = compute_set(&e->sets[i], e->min_lesion_pixels, err);
            if (s) return s;
        }
        out[i] = e->sets[i].r;
    }
    if (classes) *classes = out;
    if (n_classes) *n_classes = e->n;
    if (mean) {
        memset(mean, 0, sizeof *mean);
        snprintf(mean->name, sizeof mean->name, "mean");
        mean->domain = e->n ? out[0].domain : AAC_DOMAIN_MEDICAL;
        enum { NM = 8 };
        double sum[NM] = {0};
        int cnt[NM] = {0};
        for (int i = 0; i < e->n; i++) {
            const double v[NM] = {out[i].pixel_auroc, out[i].pixel_ap,     out[i].image_auroc,      out[i].image_ap,
                                  out[i].pixel_f1_max, out[i].region_f1_max, out[i].region_precision,
                                  out[i].region_recall};
            for (int k = 0; k < NM; k++)
                if (!isnan(v[k])) sum[k] += v[k], cnt[k]++;
            mean->n_images += out[i].n_images;
            mean->n_anomalous += out[i].n_anomalous;
            mean->n_pixels += out[i].n_pixels;
            mean->n_lesion_pixels += out[i].n_lesion_pixels;
            mean->n_lesions += out[i].n_lesions;
            mean->n_regions += out[i].n_regions;
        }
        double *dst[NM] = {&mean->pixel_auroc,  &mean->pixel_ap,      &mean->image_auroc,      &mean->image_ap,
                           &mean->pixel_f1_max, &mean->region_f1_max, &mean->region_precision, &mean->region_recall};
        for (int k = 0; k < NM; k++) *dst[k] = cnt[k] ? sum[k] / cnt[k] : NAN;
        /* thresholds and ranges are per set: a mean of them means nothing */
        mean->pixel_f1_threshold = mean->region_threshold = mean->map_low = mean->map_high = NAN;
    }
    return AAC_OK;
}
