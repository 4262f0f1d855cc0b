/* test_resize.c - Pillow-exact 8-bit bicubic, torch antialiased bicubic on floats, CLIP
 * preprocessing. Self-contained checks against plain double-precision reimplementations
 * first, then the golden tensors (../shared/golden/tiny, else the reduced set in the repository). */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <time.h>

#include "aaclip.h"
#include "golden_ref.h"
#include "resize.h"
#include "safetensors.h"
#include "testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { /* xorshift64*: reproducible across platforms */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rnd_unit(void) { return (float)(rnd() >> 8) / (float)(1u << 24) * 2.0f - 1.0f; }

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Keys cubic, a = -0.5, written out as in the spec. */
static double ref_cubic(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0;
    if (x < 2.0) return a * (x * x * x - 5.0 * x * x + 8.0 * x - 4.0);
    return 0.0;
}

/* Window and normalised double weights of output o (Pillow / torch bounds). */
static int ref_window(int in, int out, int o, int *lo_out, double *w) {
    double scale = (double)in / out, fs = scale > 1.0 ? scale : 1.0, support = 2.0 * fs;
    double center = (o + 0.5) * scale;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    double sum = 0;
    for (int j = lo; j < hi; j++) sum += w[j - lo] = ref_cubic((j - center + 0.5) / fs);
    for (int j = lo; j < hi; j++) w[j - lo] /= sum;
    *lo_out = lo;
    return hi - lo;
}

/* One Pillow pass along one axis of an 8-bit image, done plainly: every line, every output. */
static void ref_pil_pass(const uint8_t *src, uint8_t *dst, int in, int out, int lines,
                         size_t step_in, size_t step_out, size_t line_in, size_t line_out) {
    double *w = xmalloc(sizeof(double) * (size_t)(4 * in + 8));
    int32_t *k = xmalloc(sizeof(int32_t) * (size_t)(4 * in + 8));
    for (int o = 0; o < out; o++) {
        int lo, n = ref_window(in, out, o, &lo, w);
        for (int j = 0; j < n; j++) k[j] = (int32_t)round(w[j] * 4194304.0); /* 2^22 */
        for (int l = 0; l < lines; l++) {
            int32_t s = 1 << 21;
            for (int j = 0; j < n; j++) s += k[j] * src[l * line_in + (size_t)(lo + j) * step_in];
            int v = s >= 0 ? s / 4194304 : -1; /* floor division: arithmetic shift */
            dst[l * line_out + (size_t)o * step_out] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(w);
    free(k);
}

/* Naive Pillow BICUBIC: horizontal pass over all rows into an 8-bit image, then vertical. */
static void ref_pil_resize(const uint8_t *src, int sw, int sh, int C, uint8_t *dst, int dw,
                           int dh) {
    uint8_t *tmp = xmalloc((size_t)dw * sh * C);
    for (int ch = 0; ch < C; ch++) {
        ref_pil_pass(src + ch, tmp + ch, sw, dw, sh, C, C, (size_t)sw * C, (size_t)dw * C);
        ref_pil_pass(tmp + ch, dst + ch, sh, dh, dw, (size_t)dw * C, (size_t)dw * C, C, C);
    }
    free(tmp);
}

/* torch antialiased bicubic in double, as a 2-D weighted sum. */
static void ref_aa_resize(const float *src, int planes, int sh, int sw, double *dst, int dh,
                          int dw) {
    double *wy = xmalloc(sizeof(double) * (size_t)(4 * sh + 8));
    double *wx = xmalloc(sizeof(double) * (size_t)(4 * sw + 8));
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < dh; y++) {
            int ly, ny = ref_window(sh, dh, y, &ly, wy);
            for (int x = 0; x < dw; x++) {
                int lx, nx = ref_window(sw, dw, x, &lx, wx);
                double s = 0;
                for (int i = 0; i < ny; i++)
                    for (int j = 0; j < nx; j++)
                        s += wy[i] * wx[j] * src[((size_t)p * sh + ly + i) * sw + lx + j];
                dst[((size_t)p * dh + y) * dw + x] = s;
            }
        }
    free(wy);
    free(wx);
}

static void test_u8_identity_and_constant(void) {
    aac_error err;
    for (int C = 1; C <= 3; C++) {
        const int w = 23, h = 17;
        uint8_t *a = xmalloc((size_t)w * h * C), *b = xmalloc((size_t)w * h * C);
        for (int i = 0; i < w * h * C; i++) a[i] = (uint8_t)rnd();
        CHECK_OK(aac_resize_u8(a, w, h, C, b, w, h, &err), &err);
        CHECK(memcmp(a, b, (size_t)w * h * C) == 0, "identity resize changed pixels (C=%d)", C);
        free(a);
        free(b);
    }
    static const int sizes[][4] = {{512, 512, 518, 518}, {40, 30, 7, 9}, {5, 6, 61, 3}, {1, 1, 4, 4}};
    static const uint8_t values[] = {0, 1, 137, 254, 255};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t v = 0; v < sizeof values; v++) {
            const int sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
            uint8_t *a = xmalloc((size_t)sw * sh * 3), *b = xmalloc((size_t)dw * dh * 3);
            memset(a, values[v], (size_t)sw * sh * 3);
            CHECK_OK(aac_resize_u8(a, sw, sh, 3, b, dw, dh, &err), &err);
            int bad = 0;
            for (int i = 0; i < dw * dh * 3; i++) bad += b[i] != values[v];
            CHECK(bad == 0, "constant %d: %d pixels changed (%dx%d -> %dx%d)", values[v], bad, sw,
                  sh, dw, dh);
            free(a);
            free(b);
        }
}

static void test_u8_vs_naive(void) {
    static const int sizes[][4] = {
        {512, 512, 518, 518}, {518, 518, 512, 512}, {64, 48, 97, 131}, {97, 131, 64, 48},
        {37, 23, 11, 59},     {13, 7, 5, 11},       {1, 1, 3, 3},       {7, 9, 1, 1},
        {30, 20, 30, 47},     {30, 20, 11, 20},     {200, 3, 17, 8},    {3, 200, 8, 17},
    };
    aac_error err;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int C = 1; C <= 3; C++) {
            const int sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
            const size_t ni = (size_t)sw * sh * C, no = (size_t)dw * dh * C;
            uint8_t *a = xmalloc(ni), *got = xmalloc(no), *want = xmalloc(no);
            for (size_t i = 0; i < ni; i++) a[i] = (uint8_t)rnd();
            CHECK_OK(aac_resize_u8(a, sw, sh, C, got, dw, dh, &err), &err);
            ref_pil_resize(a, sw, sh, C, want, dw, dh);
            size_t bad = 0;
            for (size_t i = 0; i < no; i++) bad += got[i] != want[i];
            CHECK(bad == 0, "%dx%d -> %dx%d C=%d: %zu of %zu bytes differ from the naive Pillow",
                  sw, sh, dw, dh, C, bad, no);
            free(a);
            free(got);
            free(want);
        }
}

static void test_aa_vs_naive(void) {
    static const int sizes[][4] = {/* sh, sw, dh, dw */
                                   {24, 24, 37, 37}, {37, 37, 24, 24}, {5, 7, 11, 3},
                                   {50, 40, 13, 17}, {9, 9, 9, 20},    {16, 12, 16, 5}};
    aac_error err;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int sh = sizes[s][0], sw = sizes[s][1], dh = sizes[s][2], dw = sizes[s][3];
        const int planes = 3;
        const size_t ni = (size_t)planes * sh * sw, no = (size_t)planes * dh * dw;
        float *a = xmalloc(ni * sizeof *a), *got = xmalloc(no * sizeof *got);
        double *want = xmalloc(no * sizeof *want);
        for (size_t i = 0; i < ni; i++) a[i] = rnd_unit();
        CHECK_OK(resize_bicubic_aa_f32(a, planes, sh, sw, got, dh, dw, &err), &err);
        ref_aa_resize(a, planes, sh, sw, want, dh, dw);
        double m = 0;
        for (size_t i = 0; i < no; i++) {
            double d = fabs(got[i] - want[i]);
            if (d > m || d != d) m = d;
        }
        CHECK(m < 1e-5, "aa %dx%d -> %dx%d: max abs error %g vs double reference", sh, sw, dh, dw,
              m);
        /* constant planes stay constant up to float rounding */
        for (size_t i = 0; i < ni; i++) a[i] = 0.75f;
        CHECK_OK(resize_bicubic_aa_f32(a, planes, sh, sw, got, dh, dw, &err), &err);
        m = 0;
        for (size_t i = 0; i < no; i++) m = fmax(m, fabs(got[i] - 0.75));
        CHECK(m < 1e-6, "aa constant %dx%d -> %dx%d: max deviation %g", sh, sw, dh, dw, m);
        free(a);
        free(got);
        free(want);
    }
}

/* resize_pos_embed on [g0*g0+1][W] must equal resize_bicubic_aa_f32 on the W planes. */
static void test_pos_embed_layout(void) {
    const int W = 10, g0 = 6, g = 9;
    aac_error err;
    float *pe = xmalloc(sizeof(float) * (size_t)(g0 * g0 + 1) * W);
    float *out = xmalloc(sizeof(float) * (size_t)(g * g + 1) * W);
    float *planes = xmalloc(sizeof(float) * (size_t)g0 * g0 * W);
    float *pout = xmalloc(sizeof(float) * (size_t)g * g * W);
    for (int i = 0; i < (g0 * g0 + 1) * W; i++) pe[i] = rnd_unit();
    for (int t = 0; t < g0 * g0; t++)
        for (int c = 0; c < W; c++) planes[(size_t)c * g0 * g0 + t] = pe[(size_t)(t + 1) * W + c];
    CHECK_OK(resize_pos_embed(pe, W, g0, g, out, &err), &err);
    CHECK_OK(resize_bicubic_aa_f32(planes, W, g0, g0, pout, g, g, &err), &err);
    CHECK(memcmp(out, pe, sizeof(float) * W) == 0, "class row not copied");
    int bad = 0;
    for (int t = 0; t < g * g; t++)
        for (int c = 0; c < W; c++) bad += out[(size_t)(t + 1) * W + c] != pout[(size_t)c * g * g + t];
    CHECK(bad == 0, "resize_pos_embed differs from the planar resize in %d values", bad);
    CHECK_OK(resize_pos_embed(pe, W, g0, g0, out, &err), &err);
    CHECK(memcmp(out, pe, sizeof(float) * (size_t)(g0 * g0 + 1) * W) == 0, "g == g0 must copy");
    free(pe);
    free(out);
    free(planes);
    free(pout);
}

static void test_preprocess_self(void) {
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double stdv[3] = {0.26862954, 0.26130258, 0.27577711};
    const int w = 40, h = 33, S = 28;
    aac_error err;
    uint8_t *grey = xmalloc((size_t)w * h), *rgb = xmalloc((size_t)w * h * 3);
    float *a = xmalloc(sizeof(float) * 3 * S * S), *b = xmalloc(sizeof(float) * 3 * S * S);
    for (int i = 0; i < w * h; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i] = (uint8_t)rnd();
    CHECK_OK(aac_preprocess_grey(grey, w, h, S, a, &err), &err);
    CHECK_OK(aac_preprocess_rgb(rgb, w, h, S, b, &err), &err);
    CHECK(memcmp(a, b, sizeof(float) * 3 * S * S) == 0, "grey != RGB with equal channels");
    /* per-pixel arithmetic: resized byte v -> (v / 255f - mean) / std in float32 */
    uint8_t *r = xmalloc((size_t)S * S);
    CHECK_OK(aac_resize_u8(grey, w, h, 1, r, S, S, &err), &err);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) {
            float x = (float)r[i] / 255.0f;
            float want = (x - (float)mean[c]) / (float)stdv[c];
            bad += a[(size_t)c * S * S + i] != want;
        }
    CHECK(bad == 0, "%d normalised values differ", bad);
    free(grey);
    free(rgb);
    free(a);
    free(b);
    free(r);
}

static void test_errors(void) {
    aac_error err;
    uint8_t px[16] = {0};
    float f[64] = {0};
    CHECK(aac_resize_u8(NULL, 2, 2, 1, px, 2, 2, &err) == AAC_ERR_ARG, "NULL src");
    CHECK(err.code == AAC_ERR_ARG && err.message[0], "error not filled");
    CHECK(aac_resize_u8(px, 2, 2, 1, NULL, 2, 2, &err) == AAC_ERR_ARG, "NULL dst");
    CHECK(aac_resize_u8(px, 0, 2, 1, px, 2, 2, &err) == AAC_ERR_ARG, "zero width");
    CHECK(aac_resize_u8(px, 2, 2, 1, px, 2, -1, &err) == AAC_ERR_ARG, "negative height");
    CHECK(aac_resize_u8(px, 2, 2, 0, px, 2, 2, &err) == AAC_ERR_ARG, "0 channels");
    CHECK(aac_resize_u8(px, 2, 2, 5, px, 2, 2, NULL) == AAC_ERR_ARG, "5 channels, NULL err");
    CHECK(resize_bicubic_aa_f32(f, 0, 2, 2, f, 2, 2, &err) == AAC_ERR_ARG, "0 planes");
    CHECK(resize_bicubic_aa_f32(NULL, 1, 2, 2, f, 2, 2, &err) == AAC_ERR_ARG, "NULL float src");
    CHECK(resize_pos_embed(f, 4, 0, 2, f, &err) == AAC_ERR_ARG, "g0 = 0");
    CHECK(resize_pos_embed(f, 4, 2, 2, NULL, &err) == AAC_ERR_ARG, "NULL out");
    CHECK(aac_preprocess_grey(px, 4, 4, 0, f, &err) == AAC_ERR_ARG, "S = 0");
    CHECK(aac_preprocess_rgb(NULL, 4, 4, 2, f, &err) == AAC_ERR_ARG, "NULL rgb");
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static void test_golden(void) {
    aac_error err;
    st_file *g = NULL, *clip = NULL;
    CHECK_OK(st_open(tu_golden("golden.safetensors"), &g, &err), &err);
    CHECK_OK(st_open(tu_golden("clip_openclip.safetensors"), &clip, &err), &err);
    printf("golden set: %s\n", tu_golden_full() ? "../shared/golden/tiny (full)" : "reduced copy from the repository");

    /* image.raw_u8 [2,512,512] -> image.input [2,3,518,518] (the reduced set: sampled) */
    const st_tensor *raw = st_find(g, "image.raw_u8"), *in = st_find(g, "image.input");
    CHECK(raw && raw->dtype == ST_U8 && raw->ndim == 3 && raw->shape[0] == 2 &&
              raw->shape[1] == 512 && raw->shape[2] == 512,
          "image.raw_u8 missing or not U8 [2,512,512]");
    if (raw && raw->dtype == ST_U8 && raw->numel == 2 * 512 * 512 && in) {
        const int S = 518;
        const size_t n = (size_t)3 * S * S;
        const int64_t shape[4] = {2, 3, S, S};
        float *want = xmalloc((size_t)in->numel * sizeof *want), *got = xmalloc(2 * n * sizeof *got);
        uint8_t *slice = xmalloc(512 * 512);
        CHECK_OK(st_read_f32(g, "image.input", 0, NULL, want, &err), &err);
        for (int b = 0; b < 2; b++) {
            memcpy(slice, (const uint8_t *)raw->data + (size_t)b * 512 * 512, 512 * 512);
            CHECK_OK(aac_preprocess_grey(slice, 512, 512, S, got + b * n, &err), &err);
        }
        size_t cnt = 0;
        float *picked = gr_pick(g, "image.input", got, 4, shape, &cnt);
        CHECK(picked && cnt == (size_t)in->numel, "image.input shape");
        if (picked) {
            double m = tu_max_abs(picked, want, cnt);
            printf("image.input%s: max abs error %g, rel error %g\n", gr_sampled(g, "image.input") ? " (sampled)" : "",
                   m, tu_rel_err(picked, want, cnt));
            CHECK(m <= 1e-6, "image.input max abs error %g > 1e-6", m);
        }
        free(picked);
        const int reps = 20;
        double t0 = now_ms();
        for (int r = 0; r < reps; r++) CHECK_OK(aac_preprocess_grey(slice, 512, 512, S, got, &err), &err);
        printf("preprocess grey 512 -> 518: %.3f ms\n", (now_ms() - t0) / reps);
        free(want);
        free(got);
        free(slice);
    }

    /* visual.positional_embedding [577,48] (grid 24) -> pos_embed_resized [1370,48] (grid 37) */
    const int64_t s0[2] = {577, 48}, s1[2] = {1370, 48};
    const st_tensor *pr = st_find(g, "pos_embed_resized");
    float *pe = xmalloc(577 * 48 * sizeof *pe), *want = xmalloc((size_t)(pr ? pr->numel : 1) * sizeof *want);
    float *got = xmalloc(1370 * 48 * sizeof *got);
    CHECK_OK(st_read_f32(clip, "visual.positional_embedding", 2, s0, pe, &err), &err);
    CHECK_OK(st_read_f32(g, "pos_embed_resized", 0, NULL, want, &err), &err);
    CHECK_OK(resize_pos_embed(pe, 48, 24, 37, got, &err), &err);
    size_t cnt = 0;
    float *picked = gr_pick(g, "pos_embed_resized", got, 2, s1, &cnt);
    CHECK(picked != NULL, "pos_embed_resized shape");
    if (picked) {
        double rel = tu_rel_err(picked, want, cnt), m = tu_max_abs(picked, want, cnt);
        printf("pos_embed_resized%s: rel error %g, max abs error %g\n",
               gr_sampled(g, "pos_embed_resized") ? " (sampled)" : "", rel, m);
        CHECK(rel <= 1e-4, "pos_embed_resized rel error %g > 1e-4", rel);
    }
    free(picked);
    free(pe);
    free(want);
    free(got);
    st_close(g);
    st_close(clip);
}

int main(void) {
    test_errors();
    test_u8_identity_and_constant();
    test_u8_vs_naive();
    test_aa_vs_naive();
    test_pos_embed_layout();
    test_preprocess_self();
    test_golden();
    return tu_finish("test_resize");
}
