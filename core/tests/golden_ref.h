/* golden_ref.h - comparing results with the golden tensors when the reference set is the
 * reduced one (testutil.h: tu_golden): there, large tensors are sampled on a regular grid, and
 * golden.safetensors' metadata entry "sampled" says how ({"name": [[axis, stride], ...]}). A
 * test computes its full result and compares it at exactly the positions the reference holds. */
#ifndef AAC_GOLDEN_REF_H
#define AAC_GOLDEN_REF_H
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "aaclip.h"
#include "safetensors.h"

/* Stride per axis of golden tensor `name` (1 on every axis when it is whole). */
static inline void gr_strides(const st_file *g, const char *name, int ndim, int64_t *stride) {
    for (int a = 0; a < ndim; a++) stride[a] = 1;
    const char *meta = st_metadata(g, "sampled");
    json_t *all = meta ? json_loads(meta, 0, NULL) : NULL;
    json_t *plan = all ? json_object_get(all, name) : NULL;
    size_t i;
    json_t *step;
    json_array_foreach(plan, i, step) {
        int axis = (int)json_integer_value(json_array_get(step, 0));
        if (axis >= 0 && axis < ndim) stride[axis] = json_integer_value(json_array_get(step, 1));
    }
    json_decref(all);
}

/* 1 when the reference holds `name` sampled. */
static inline int gr_sampled(const st_file *g, const char *name) {
    int64_t s[8];
    gr_strides(g, name, 8, s);
    for (int a = 0; a < 8; a++)
        if (s[a] != 1) return 1;
    return 0;
}

/* The values of `full` (row-major, shape dims[ndim]) at the positions golden tensor `name`
 * holds, malloc'ed, their count in *n: all of them for a whole tensor; every stride-th index
 * along the sampled axes otherwise. NULL when the golden tensor's shape does not fit. */
static inline float *gr_pick(const st_file *g, const char *name, const float *full, int ndim, const int64_t *dims,
                             size_t *n) {
    const st_tensor *t = st_find(g, name);
    int64_t stride[8], gdims[8];
    if (!t || ndim > 8) return NULL;
    gr_strides(g, name, ndim, stride);
    size_t count = 1;
    for (int a = 0; a < ndim; a++) {
        gdims[a] = (dims[a] + stride[a] - 1) / stride[a];
        count *= (size_t)gdims[a];
    }
    if ((int64_t)count != t->numel) return NULL;
    float *out = malloc(sizeof(float) * (count ? count : 1));
    int64_t idx[8] = {0};
    for (size_t k = 0; k < count; k++) {
        int64_t off = 0;
        for (int a = 0; a < ndim; a++) off = off * dims[a] + idx[a] * stride[a];
        out[k] = full[off];
        for (int a = ndim - 1; a >= 0; a--) {
            if (++idx[a] < gdims[a]) break;
            idx[a] = 0;
        }
    }
    *n = count;
    return out;
}

/* The golden step's two input images [2, 3, S, S], malloc'ed: image.input when the reference
 * holds it whole, else the 512 x 512 slices image.raw_u8 through our preprocessing (equal to
 * image.input within 1e-6: test_golden checks it). NULL when neither can be had. */
static inline float *gr_input(const st_file *g, int S) {
    const st_tensor *t = st_find(g, gr_sampled(g, "image.input") ? "image.raw_u8" : "image.input");
    float *out = t ? malloc(sizeof(float) * 2 * 3 * (size_t)S * S) : NULL;
    if (!out) return NULL;
    aac_error err;
    if (t->dtype == ST_U8 && t->numel == 2 * 512 * 512) {
        for (int b = 0; b < 2; b++)
            if (aac_preprocess_grey((const uint8_t *)t->data + (size_t)b * 512 * 512, 512, 512, S,
                                    out + (size_t)b * 3 * S * S, &err) != AAC_OK) {
                free(out);
                return NULL;
            }
        return out;
    }
    if (t->numel != 2 * 3 * (int64_t)S * S || st_read_f32(g, t->name, 0, NULL, out, &err) != AAC_OK) {
        free(out);
        return NULL;
    }
    return out;
}
#endif
