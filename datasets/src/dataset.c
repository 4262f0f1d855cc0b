/* dataset.c - the reference's JSON-lines datasets and their samples as model input. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"
#include "error.h"

struct aac_dataset {
    char *path;
    aac_sample *s;
    int n, cap;
};

int aac_dataset_count(const aac_dataset *d) { return d ? d->n : 0; }
const aac_sample *aac_dataset_sample(const aac_dataset *d, int i) { return d && i >= 0 && i < d->n ? &d->s[i] : NULL; }
const char *aac_dataset_path(const aac_dataset *d) { return d ? d->path : NULL; }

void aac_dataset_free(aac_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++)
        free((char *)d->s[i].image), free((char *)d->s[i].mask), free((char *)d->s[i].class_name);
    free(d->s);
    free(d->path);
    free(d);
}

/* path relative to the dataset's folder unless absolute */
static char *resolve(const char *dir, const char *rel) {
    const size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p) return NULL;
    if (rel[0] == '/' || !*dir) snprintf(p, n, "%s", rel);
    else snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

/* the file part of a reference must exist */
static aac_status check_exists(const char *jsonl, int line, const char *key, const char *raw, const char *ref,
                               aac_error *err) {
    char path[4096];
    int z;
    aac_error e2;
    if (image_ref_split(ref, path, sizeof path, &z, &e2))
        return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: %s: %s", jsonl, line, key, e2.message);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return aac_fail(err, AAC_ERR_IO, "%s:%d: %s '%s' (%s): %s", jsonl, line, key, raw, path, strerror(errno));
    return AAC_OK;
}

static aac_status parse_line(aac_dataset *d, const char *dir, char *text, int line, aac_error *err) {
    const char *f = d->path;
    json_error_t je;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!o) return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: bad JSON: %s (column %d)", f, line, je.text, je.column);
    aac_status s = AAC_OK;
    json_t *img = json_object_get(o, "image_path"), *lab = json_object_get(o, "label"),
           *cls = json_object_get(o, "class_name"), *msk = json_object_get(o, "mask_path");
    int label = -1;
    if (json_is_integer(lab)) label = (int)json_integer_value(lab);
    else if (json_is_boolean(lab)) label = json_is_true(lab);
    else if (json_is_real(lab) && (json_real_value(lab) == 0.0 || json_real_value(lab) == 1.0))
        label = (int)json_real_value(lab);
    if (!json_is_object(o)) s = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: a JSON object is expected", f, line);
    else if (!json_is_string(img) || !*json_string_value(img))
        s = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: \"image_path\" (a non-empty string) is missing", f, line);
    else if (label != 0 && label != 1)
        s = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: \"label\" must be 0 or 1", f, line);
    else if (!json_is_string(cls) || !*json_string_value(cls))
        s = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: \"class_name\" (a non-empty string) is missing", f, line);
    else if (msk && !json_is_null(msk) && !json_is_string(msk))
        s = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: \"mask_path\" must be a string or null", f, line);
    if (s) {
        json_decref(o);
        return s;
    }
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        aac_sample *p = realloc(d->s, sizeof *p * cap);
        if (!p) {
            json_decref(o);
            return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        }
        d->s = p, d->cap = cap;
    }
    aac_sample *x = &d->s[d->n];
    memset(x, 0, sizeof *x);
    const char *mraw = json_is_string(msk) ? json_string_value(msk) : "";
    x->image = resolve(dir, json_string_value(img));
    x->mask = *mraw ? resolve(dir, mraw) : NULL;
    x->class_name = strdup(json_string_value(cls));
    x->label = label;
    x->line = line;
    if (!x->image || (*mraw && !x->mask) || !x->class_name) {
        free((char *)x->image), free((char *)x->mask), free((char *)x->class_name);
        json_decref(o);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    d->n++;
    s = check_exists(f, line, "image_path", json_string_value(img), x->image, err);
    if (!s && x->mask) s = check_exists(f, line, "mask_path", mraw, x->mask, err);
    json_decref(o);
    return s;
}

aac_status aac_dataset_open(const char *jsonl, aac_dataset **out, aac_error *err) {
    if (!jsonl || !out) return aac_fail(err, AAC_ERR_ARG, "aac_dataset_open: NULL argument");
    *out = NULL;
    FILE *f = fopen(jsonl, "r");
    if (!f) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", jsonl, strerror(errno));
    aac_dataset *d = calloc(1, sizeof *d);
    char *dir = strdup(jsonl);
    if (!d || !dir || !(d->path = strdup(jsonl))) {
        fclose(f), free(d), free(dir);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else dir[0] = 0;
    if (slash == dir) strcpy(dir, "/");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int no = 0;
    aac_status s = AAC_OK;
    while (!s && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        if ((size_t)len != strlen(line)) {
            s = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: NUL byte in the line", jsonl, no);
            break;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) continue;
        s = parse_line(d, dir, line, no, err);
    }
    if (!s && ferror(f)) s = aac_fail(err, AAC_ERR_IO, "%s: read error", jsonl);
    if (!s && d->n == 0) s = aac_fail(err, AAC_ERR_FORMAT, "%s: no samples", jsonl);
    free(line);
    free(dir);
    fclose(f);
    if (s) {
        aac_dataset_free(d);
        return s;
    }
    *out = d;
    return AAC_OK;
}

void aac_mask_resize_nearest(const aac_image *m, int S, uint8_t *out) {
    for (int y = 0; y < S; y++) {
        int sy = (int)(((double)y + 0.5) * m->h / S);
        if (sy >= m->h) sy = m->h - 1;
        for (int x = 0; x < S; x++) {
            int sx = (int)(((double)x + 0.5) * m->w / S);
            if (sx >= m->w) sx = m->w - 1;
            const uint8_t *p = &m->px[((size_t)sy * m->w + sx) * m->channels];
            int on = 0;
            for (int c = 0; c < m->channels; c++) on |= p[c] != 0;
            out[(size_t)y * S + x] = (uint8_t)on;
        }
    }
}

aac_status aac_dataset_load(const aac_dataset *d, int i, int S, const aac_augment *aug, uint64_t seed,
                            float *input, float *mask, uint8_t *mask_u8, aac_error *err) {
    const aac_sample *x = aac_dataset_sample(d, i);
    if (!x || !input || S <= 0) return aac_fail(err, AAC_ERR_ARG, "aac_dataset_load: bad argument");
    aac_image img = {0}, m = {0};
    aac_error e2;
    aac_status s = image_read(x->image, 0, &img, &e2);
    if (s) return aac_fail(err, s, "%s:%d: image_path: %s", d->path, x->line, e2.message);
    if (x->mask && (mask || mask_u8 || aug)) {
        if ((s = image_read(x->mask, 1, &m, &e2))) s = aac_fail(err, s, "%s:%d: mask_path: %s", d->path, x->line, e2.message);
        else if (m.w != img.w || m.h != img.h)
            s = aac_fail(err, AAC_ERR_SHAPE, "%s:%d: mask %s is %d x %d but image %s is %d x %d", d->path, x->line,
                         x->mask, m.w, m.h, x->image, img.w, img.h);
    }
    if (!s && aug) s = aac_augment_apply(aug, seed, &img, m.px ? &m : NULL, err);
    if (!s) s = img.channels == 1 ? aac_preprocess_grey(img.px, img.w, img.h, S, input, err)
                                  : aac_preprocess_rgb(img.px, img.w, img.h, S, input, err);
    if (!s && (mask || mask_u8)) {
        uint8_t *mu = mask_u8 ? mask_u8 : malloc((size_t)S * S);
        if (!mu) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        else {
            if (m.px) aac_mask_resize_nearest(&m, S, mu);
            else memset(mu, 0, (size_t)S * S);
            if (mask)
                for (size_t k = 0; k < (size_t)S * S; k++) mask[k] = mu[k];
            if (!mask_u8) free(mu);
        }
    }
    aac_image_release(&img);
    aac_image_release(&m);
    return s;
}
