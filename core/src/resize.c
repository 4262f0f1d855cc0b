/* resize.c - Pillow BICUBIC on 8-bit images (bit-exact), PyTorch antialiased bicubic on float
 * planes, and the CLIP input preprocessing built on them.
 *
 * Both resamplers are separable: per output index o of a pass, a window [lo, lo+n) of input
 * indices and n weights. The weight tables are built once per call; the passes are plain
 * integer / float loops. The exact operation order of the references is kept on purpose,
 * since the golden files were produced by Pillow (integer result) and torch 1.13 (float32). */
#include "resize.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Largest side accepted; keeps every size_t product and the int32 accumulators far from
 * overflow (Pillow's own sum can reach ~1.1 * 255 * 2^22 < 2^31). */
#define RS_MAX_SIDE (1 << 16)

/* ------------------------------------------------------------------ Pillow, 8-bit */

#define PIL_PRECISION_BITS 22 /* 32 - 8 - 2, as Pillow's Resample.c */

/* Pillow's bicubic_filter (a = -0.5), in double. Only used while building tables. */
static double pil_cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct pil_coeffs {
    int ksize;    /* taps stored per output index */
    int *lo, *n;  /* window start and length per output index */
    int32_t *k;   /* [out][ksize] fixed-point weights, zero past n */
} pil_coeffs;

static void pil_coeffs_free(pil_coeffs *c) {
    free(c->lo);
    free(c->n);
    free(c->k);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for box (0, in). */
static aac_status pil_coeffs_make(int in, int out, pil_coeffs *c, aac_error *err) {
    double scale = (double)in / out;
    double fs = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fs;
    double ss = 1.0 / fs; /* Pillow multiplies by the reciprocal; keep it for exactness */
    int ksize = (int)ceil(support) * 2 + 1;
    memset(c, 0, sizeof *c);
    c->ksize = ksize;
    c->lo = malloc((size_t)out * sizeof *c->lo);
    c->n = malloc((size_t)out * sizeof *c->n);
    c->k = malloc((size_t)out * (size_t)ksize * sizeof *c->k);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!c->lo || !c->n || !c->k || !w) {
        free(w);
        pil_coeffs_free(c);
        return aac_fail(err, AAC_ERR_NOMEM, "resize: out of memory for %d->%d weights", in, out);
    }
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in) hi = in;
        int n = hi - lo;
        double ww = 0.0;
        for (int x = 0; x < n; x++) {
            w[x] = pil_cubic((x + lo - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)o * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < n ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            /* 22-bit fixed point, rounded half away from zero (truncation after +-0.5). */
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PIL_PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PIL_PRECISION_BITS));
        }
        c->lo[o] = lo;
        c->n[o] = n;
    }
    free(w);
    return AAC_OK;
}

/* For the horizontal pass: every window becomes exactly K = min(ksize, in) taps, moved left
 * where it would run past the row end and padded with zero weights. Zero taps add nothing
 * to the integer sum, so the result is unchanged while the inner loop gets a fixed length. */
static void pil_coeffs_fix_width(pil_coeffs *c, int in, int out) {
    const int K = c->ksize < in ? c->ksize : in;
    for (int o = 0; o < out; o++) {
        int32_t *k = c->k + (size_t)o * c->ksize;
        const int lo = c->lo[o], n = c->n[o];
        const int lo2 = lo < in - K ? lo : in - K, sh = lo - lo2;
        if (sh > 0) {
            memmove(k + sh, k, (size_t)n * sizeof *k);
            memset(k, 0, (size_t)sh * sizeof *k);
        }
        c->lo[o] = lo2;
        c->n[o] = K;
    }
}

/* Clip of the fixed-point sum: same as Pillow's clip8 (shift, then saturate to 0..255),
 * written as clamp-then-shift so it has no implementation-defined negative shift. */
static inline uint8_t pil_clip8(int32_t s) {
    const int32_t top = (256 << PIL_PRECISION_BITS) - 1;
    s = s < 0 ? 0 : s;
    s = s > top ? top : s;
    return (uint8_t)(s >> PIL_PRECISION_BITS);
}

/* Horizontal pass over `rows` rows of C interleaved channels. A window is a handful of
 * neighbouring bytes, too short to vectorise along the row, so blocks of PIL_LANES rows are
 * transposed into T [sw*C][PIL_LANES] and each output sums whole lane vectors (one per row)
 * instead. All windows have the same length K (pil_coeffs_fix_width). */
#define PIL_LANES 16
static void pil_horizontal(const uint8_t *src, int sw, int rows, int C, uint8_t *dst, int dw,
                           const pil_coeffs *c, uint8_t *T) {
    const size_t sstride = (size_t)sw * C, dstride = (size_t)dw * C;
    const int K = c->n[0];
    for (int y0 = 0; y0 < rows; y0 += PIL_LANES) {
        const int nr = rows - y0 < PIL_LANES ? rows - y0 : PIL_LANES;
        for (int r = 0; r < nr; r++) {
            const uint8_t *s = src + (size_t)(y0 + r) * sstride;
            for (size_t x = 0; x < sstride; x++) T[x * PIL_LANES + r] = s[x];
        }
        /* lanes >= nr keep stale bytes (T starts zeroed): computed, never stored */
        for (int o = 0; o < dw; o++) {
            const int32_t *k = c->k + (size_t)o * c->ksize;
            for (int ch = 0; ch < C; ch++) {
                const uint8_t *t = T + ((size_t)c->lo[o] * C + ch) * PIL_LANES;
                int32_t acc[PIL_LANES];
                for (int r = 0; r < PIL_LANES; r++) acc[r] = 1 << (PIL_PRECISION_BITS - 1);
                for (int j = 0; j < K; j++) {
                    const uint8_t *tj = t + (size_t)j * C * PIL_LANES;
                    const int32_t kj = k[j];
                    for (int r = 0; r < PIL_LANES; r++) acc[r] += (int32_t)tj[r] * kj;
                }
                uint8_t *d = dst + (size_t)y0 * dstride + (size_t)o * C + ch;
                for (int r = 0; r < nr; r++) d[(size_t)r * dstride] = pil_clip8(acc[r]);
            }
        }
    }
}

/* Vertical pass: each output row is a weighted sum of whole input rows, so the inner loop
 * runs along the row (len = width * C bytes) and vectorises. acc: int32 scratch [len]. */
static void pil_vertical(const uint8_t *src, size_t len, uint8_t *dst, int dh,
                         const pil_coeffs *c, int32_t *acc) {
    for (int o = 0; o < dh; o++) {
        const int32_t *k = c->k + (size_t)o * c->ksize;
        const int n = c->n[o];
        for (size_t x = 0; x < len; x++) acc[x] = 1 << (PIL_PRECISION_BITS - 1);
        for (int j = 0; j < n; j++) {
            const uint8_t *r = src + (size_t)(c->lo[o] + j) * len;
            const int32_t kj = k[j];
            for (size_t x = 0; x < len; x++) acc[x] += (int32_t)r[x] * kj;
        }
        uint8_t *d = dst + (size_t)o * len;
        for (size_t x = 0; x < len; x++) d[x] = pil_clip8(acc[x]);
    }
}

/* Pillow's ImagingResample core: each channel is resampled independently. (Image.resize
 * premultiplies alpha for LA/RGBA first; callers wanting that must do it themselves.) */
aac_status aac_resize_u8(const uint8_t *src, int sw, int sh, int channels, uint8_t *dst, int dw,
                         int dh, aac_error *err) {
    if (!src || !dst)
        return aac_fail(err, AAC_ERR_ARG, "aac_resize_u8: NULL %s", !src ? "src" : "dst");
    if (channels < 1 || channels > 4)
        return aac_fail(err, AAC_ERR_ARG, "aac_resize_u8: channels %d not in 1..4", channels);
    if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || sw > RS_MAX_SIDE || sh > RS_MAX_SIDE ||
        dw > RS_MAX_SIDE || dh > RS_MAX_SIDE)
        return aac_fail(err, AAC_ERR_ARG, "aac_resize_u8: bad size %dx%d -> %dx%d (1..%d)", sw,
                        sh, dw, dh, RS_MAX_SIDE);
    const int C = channels;
    const int need_h = dw != sw, need_v = dh != sh; /* Pillow skips an unchanged dimension */
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)sw * sh * C);
        return AAC_OK;
    }
    pil_coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL, *T = NULL;
    int32_t *acc = NULL;
    aac_status st = AAC_OK;
    if (need_h) {
        if ((st = pil_coeffs_make(sw, dw, &ch, err)) != AAC_OK) goto done;
        pil_coeffs_fix_width(&ch, sw, dw);
    }
    if (need_v && (st = pil_coeffs_make(sh, dh, &cv, err)) != AAC_OK) goto done;

    if (need_h && !(T = calloc((size_t)sw * C, PIL_LANES))) {
        st = aac_fail(err, AAC_ERR_NOMEM, "aac_resize_u8: out of memory");
        goto done;
    }
    if (!need_v) { /* horizontal only, straight into dst */
        pil_horizontal(src, sw, sh, C, dst, dw, &ch, T);
        goto done;
    }
    const uint8_t *vsrc = src;
    if (need_h) {
        /* Only the source rows the vertical pass reads go through the horizontal pass. */
        const int y0 = cv.lo[0], y1 = cv.lo[dh - 1] + cv.n[dh - 1];
        tmp = malloc((size_t)(y1 - y0) * dw * C);
        if (!tmp) {
            st = aac_fail(err, AAC_ERR_NOMEM, "aac_resize_u8: out of memory");
            goto done;
        }
        pil_horizontal(src + (size_t)y0 * sw * C, sw, y1 - y0, C, tmp, dw, &ch, T);
        for (int o = 0; o < dh; o++) cv.lo[o] -= y0;
        vsrc = tmp;
    }
    acc = malloc((size_t)dw * C * sizeof *acc);
    if (!acc) {
        st = aac_fail(err, AAC_ERR_NOMEM, "aac_resize_u8: out of memory");
        goto done;
    }
    pil_vertical(vsrc, (size_t)dw * C, dst, dh, &cv, acc);
done:
    free(acc);
    free(T);
    free(tmp);
    pil_coeffs_free(&ch);
    pil_coeffs_free(&cv);
    return st;
}

/* ------------------------------------------------------------------ CLIP preprocessing */

/* torchvision: ToTensor divides the uint8 value by 255 in float32, Normalize computes
 * (x - mean) / std in float32 with mean/std rounded from Python doubles, hence the
 * double literals cast to float (not float literals, which can round differently). */
static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711};

/* lut[ch][v] = normalised value of 8-bit v in channel ch (only 256 distinct inputs). */
static void clip_lut(float lut[3][256]) {
    for (int ch = 0; ch < 3; ch++) {
        const float m = (float)clip_mean[ch], s = (float)clip_std[ch];
        for (int v = 0; v < 256; v++) {
            const float x = (float)v / 255.0f;
            lut[ch][v] = (x - m) / s;
        }
    }
}

static aac_status preprocess(const uint8_t *img, int w, int h, int C, int S, float *out,
                             aac_error *err, const char *fn) {
    if (!img || !out) return aac_fail(err, AAC_ERR_ARG, "%s: NULL %s", fn, !img ? "image" : "out");
    if (w < 1 || h < 1 || S < 1 || w > RS_MAX_SIDE || h > RS_MAX_SIDE || S > RS_MAX_SIDE)
        return aac_fail(err, AAC_ERR_ARG, "%s: bad size %dx%d -> %d", fn, w, h, S);
    const size_t np = (size_t)S * S;
    uint8_t *r = malloc(np * C);
    if (!r) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", fn);
    /* Grey: the channels of the RGB image are equal and resized independently, so resizing
     * the single channel once gives the same bytes for all three. */
    aac_status st = aac_resize_u8(img, w, h, C, r, S, S, err);
    if (st != AAC_OK) {
        free(r);
        return st;
    }
    float lut[3][256];
    clip_lut(lut);
    for (int ch = 0; ch < 3; ch++) {
        const float *l = lut[ch];
        float *o = out + (size_t)ch * np;
        if (C == 1) {
            for (size_t i = 0; i < np; i++) o[i] = l[r[i]];
        } else {
            for (size_t i = 0; i < np; i++) o[i] = l[r[i * 3 + ch]];
        }
    }
    free(r);
    return AAC_OK;
}

aac_status aac_preprocess_grey(const uint8_t *grey, int w, int h, int S, float *out,
                               aac_error *err) {
    return preprocess(grey, w, h, 1, S, out, err, "aac_preprocess_grey");
}

aac_status aac_preprocess_rgb(const uint8_t *rgb, int w, int h, int S, float *out,
                              aac_error *err) {
    return preprocess(rgb, w, h, 3, S, out, err, "aac_preprocess_rgb");
}

/* ------------------------------------------------------------------ PyTorch AA bicubic, float */

/* The golden position embedding comes from a torch 1.13 build whose kernels gcc compiled with
 * FMA enabled (AVX2/AVX512 dispatch) and floating-point contraction on: its float expressions
 * `a * b + c` are fused. Reproducing the fusions below makes the resize bit-exact (without them
 * the relative error is ~6e-7). fma/fmaf are correctly rounded everywhere; in the passes they
 * become single instructions through the target("fma") clones further down. */

/* HelperInterpCubic::aa_filter<float> (a = -0.5): the x < 1 branch is evaluated in double
 * (a is a double literal), the 1 <= x < 2 branch in float up to the final * a. */
static float aa_cubic_f(float x) {
    if (x < 0.0f) x = -x;
    if (x < 1.0f) return (float)fma(fma(1.5, x, -2.5) * x, x, 1.0);
    if (x < 2.0f) return (float)((double)fmaf(fmaf(x - 5.0f, x, 8.0f), x, -4.0f) * -0.5);
    return 0.0f;
}

typedef struct aa_coeffs {
    int ksize;
    int *lo, *n;
    float *w; /* [out][ksize] */
} aa_coeffs;

static void aa_coeffs_free(aa_coeffs *c) {
    free(c->lo);
    free(c->n);
    free(c->w);
}

/* HelperInterpBase::_compute_indices_weights_aa with scalar_t = float (torch computes the
 * weights in the input's dtype); its mixed float/double promotions reproduced literally. */
static aac_status aa_coeffs_make(int in, int out, aa_coeffs *c, aac_error *err) {
    const float scale = (float)in / (float)out; /* area_pixel_compute_scale, no scale_factor */
    const float support = scale >= 1.0f ? (float)(2.0 * scale) : 2.0f;
    const float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
    const int ksize = (int)ceilf(support) * 2 + 1;
    memset(c, 0, sizeof *c);
    c->ksize = ksize;
    c->lo = malloc((size_t)out * sizeof *c->lo);
    c->n = malloc((size_t)out * sizeof *c->n);
    c->w = malloc((size_t)out * (size_t)ksize * sizeof *c->w);
    if (!c->lo || !c->n || !c->w) {
        aa_coeffs_free(c);
        return aac_fail(err, AAC_ERR_NOMEM, "resize: out of memory for %d->%d weights", in, out);
    }
    for (int i = 0; i < out; i++) {
        const float center = (float)(scale * (i + 0.5));
        long lo = (long)((double)(center - support) + 0.5);
        if (lo < 0) lo = 0;
        long hi = (long)((double)(center + support) + 0.5);
        if (hi > in) hi = in;
        const int n = (int)(hi - lo);
        float *w = c->w + (size_t)i * ksize;
        float total = 0.0f;
        for (int j = 0; j < n; j++) {
            const float d = (float)(j + lo) - center; /* int64 - float is a float subtraction */
            w[j] = aa_cubic_f((float)(((double)d + 0.5) * invscale));
            total += w[j];
        }
        for (int j = 0; j < n; j++)
            if (total != 0.0f) w[j] /= total;
        for (int j = n; j < ksize; j++) w[j] = 0.0f;
        c->lo[i] = (int)lo;
        c->n[i] = n;
    }
    return AAC_OK;
}

#if defined(__GNUC__)
#define AA_INLINE static inline __attribute__((always_inline))
#else
#define AA_INLINE static inline
#endif

/* Horizontal pass on [rows][sw][C] -> [rows][dw][C]. Per output value torch computes
 * t0*w0, then output = fma(tj, wj, output) for j ascending; with channels innermost that
 * order is kept per value and the channel loop vectorises. */
AA_INLINE void aa_horizontal_body(const float *src, int sw, int rows, int C, float *dst, int dw,
                                  const aa_coeffs *c) {
    for (int y = 0; y < rows; y++) {
        const float *srow = src + (size_t)y * sw * C;
        float *drow = dst + (size_t)y * dw * C;
        for (int o = 0; o < dw; o++) {
            const float *w = c->w + (size_t)o * c->ksize;
            const float *s = srow + (size_t)c->lo[o] * C;
            float *d = drow + (size_t)o * C;
            const int n = c->n[o];
            if (C == 1) { /* planes: a short dot product per output */
                float acc = s[0] * w[0];
                for (int j = 1; j < n; j++) acc = fmaf(s[j], w[j], acc);
                d[0] = acc;
                continue;
            }
            const float w0 = w[0];
            for (int ch = 0; ch < C; ch++) d[ch] = s[ch] * w0;
            for (int j = 1; j < n; j++) {
                const float *sj = s + (size_t)j * C;
                const float wj = w[j];
                for (int ch = 0; ch < C; ch++) d[ch] = fmaf(sj[ch], wj, d[ch]);
            }
        }
    }
}

/* Vertical pass on [sh][len] -> [dh][len], len = width * C. */
AA_INLINE void aa_vertical_body(const float *src, size_t len, float *dst, int dh,
                                const aa_coeffs *c) {
    for (int o = 0; o < dh; o++) {
        const float *w = c->w + (size_t)o * c->ksize;
        const float *s = src + (size_t)c->lo[o] * len;
        float *d = dst + (size_t)o * len;
        const int n = c->n[o];
        const float w0 = w[0];
        for (size_t x = 0; x < len; x++) d[x] = s[x] * w0;
        for (int j = 1; j < n; j++) {
            const float *sj = s + (size_t)j * len;
            const float wj = w[j];
            for (size_t x = 0; x < len; x++) d[x] = fmaf(sj[x], wj, d[x]);
        }
    }
}

/* Portable build of the passes: fmaf is a libm call unless the target has FMA. */
static void aa_horizontal_sw(const float *src, int sw, int rows, int C, float *dst, int dw,
                             const aa_coeffs *c) {
    aa_horizontal_body(src, sw, rows, C, dst, dw, c);
}
static void aa_vertical_sw(const float *src, size_t len, float *dst, int dh, const aa_coeffs *c) {
    aa_vertical_body(src, len, dst, dh, c);
}

#if defined(__GNUC__) && defined(__x86_64__)
/* Clones compiled for FMA hardware (the project baseline, x86-64-v2, has none): fmaf expands
 * to vfmadd inline and the loops vectorise. Chosen at run time by CPU feature. */
#define AA_HAVE_FMA_CLONE 1
__attribute__((target("fma"))) static void aa_horizontal_hw(const float *src, int sw, int rows,
                                                            int C, float *dst, int dw,
                                                            const aa_coeffs *c) {
    aa_horizontal_body(src, sw, rows, C, dst, dw, c);
}
__attribute__((target("fma"))) static void aa_vertical_hw(const float *src, size_t len,
                                                          float *dst, int dh,
                                                          const aa_coeffs *c) {
    aa_vertical_body(src, len, dst, dh, c);
}
#endif

static void aa_horizontal(const float *src, int sw, int rows, int C, float *dst, int dw,
                          const aa_coeffs *c) {
#ifdef AA_HAVE_FMA_CLONE
    if (__builtin_cpu_supports("fma")) {
        aa_horizontal_hw(src, sw, rows, C, dst, dw, c);
        return;
    }
#endif
    aa_horizontal_sw(src, sw, rows, C, dst, dw, c);
}

static void aa_vertical(const float *src, size_t len, float *dst, int dh, const aa_coeffs *c) {
#ifdef AA_HAVE_FMA_CLONE
    if (__builtin_cpu_supports("fma")) {
        aa_vertical_hw(src, len, dst, dh, c);
        return;
    }
#endif
    aa_vertical_sw(src, len, dst, dh, c);
}

/* Resizes one image of C interleaved float channels, [sh][sw][C] -> [dh][dw][C]; width
 * first into a float temporary, then height, as torch's separable kernel. A dimension that
 * does not change is skipped: torch's weights for scale 1 are exactly (0, 1, 0, 0). */
static aac_status aa_resize_interleaved(const float *src, int sh, int sw, int C, float *dst,
                                        int dh, int dw, aac_error *err) {
    const int need_h = dw != sw, need_v = dh != sh;
    if (!need_h && !need_v) {
        memmove(dst, src, (size_t)sh * sw * C * sizeof *dst);
        return AAC_OK;
    }
    aa_coeffs ch = {0}, cv = {0};
    float *tmp = NULL;
    aac_status st = AAC_OK;
    if (need_h && (st = aa_coeffs_make(sw, dw, &ch, err)) != AAC_OK) goto done;
    if (need_v && (st = aa_coeffs_make(sh, dh, &cv, err)) != AAC_OK) goto done;
    if (!need_v) {
        aa_horizontal(src, sw, sh, C, dst, dw, &ch);
        goto done;
    }
    const float *vsrc = src;
    if (need_h) {
        tmp = malloc((size_t)sh * dw * C * sizeof *tmp);
        if (!tmp) {
            st = aac_fail(err, AAC_ERR_NOMEM, "resize: out of memory");
            goto done;
        }
        aa_horizontal(src, sw, sh, C, tmp, dw, &ch);
        vsrc = tmp;
    }
    aa_vertical(vsrc, (size_t)dw * C, dst, dh, &cv);
done:
    free(tmp);
    aa_coeffs_free(&ch);
    aa_coeffs_free(&cv);
    return st;
}

aac_status resize_bicubic_aa_f32(const float *src, int planes, int sh, int sw, float *dst, int dh,
                                 int dw, aac_error *err) {
    if (!src || !dst)
        return aac_fail(err, AAC_ERR_ARG, "resize_bicubic_aa_f32: NULL %s", !src ? "src" : "dst");
    if (planes < 1 || sw < 1 || sh < 1 || dw < 1 || dh < 1 || sw > RS_MAX_SIDE ||
        sh > RS_MAX_SIDE || dw > RS_MAX_SIDE || dh > RS_MAX_SIDE)
        return aac_fail(err, AAC_ERR_ARG,
                        "resize_bicubic_aa_f32: bad size %d planes %dx%d -> %dx%d", planes, sw,
                        sh, dw, dh);
    for (int p = 0; p < planes; p++) {
        aac_status st = aa_resize_interleaved(src + (size_t)p * sh * sw, sh, sw, 1,
                                              dst + (size_t)p * dh * dw, dh, dw, err);
        if (st != AAC_OK) return st;
    }
    return AAC_OK;
}

aac_status resize_pos_embed(const float *pe, int width, int g0, int g, float *out,
                            aac_error *err) {
    if (!pe || !out)
        return aac_fail(err, AAC_ERR_ARG, "resize_pos_embed: NULL %s", !pe ? "pe" : "out");
    if (width < 1 || g0 < 1 || g < 1 || g0 > RS_MAX_SIDE || g > RS_MAX_SIDE)
        return aac_fail(err, AAC_ERR_ARG, "resize_pos_embed: bad width %d or grid %d -> %d",
                        width, g0, g);
    /* Class row first, unchanged; the grid rows are [g0][g0][width], i.e. an image with
     * `width` interleaved channels: the same values torch gets from the NCHW permute. */
    memcpy(out, pe, (size_t)width * sizeof *out);
    return aa_resize_interleaved(pe + width, g0, g0, width, out + width, g, g, err);
}
