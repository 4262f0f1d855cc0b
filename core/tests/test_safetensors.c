/* test_safetensors.c - writer/reader round trip, malformed-file corpus, lookup errors, and
 * the golden files (../shared/golden/tiny, else the reduced set in the repository). */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

#include "testutil.h"

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void join(char *out, const char *dir, const char *name) {
    snprintf(out, 4096, "%s/%s", dir, name);
}

/* Writes a raw file: optional 8-byte length `hlen`, header text, then `data_len` zero bytes. */
static void write_raw(const char *path, uint64_t hlen, const char *hdr, size_t data_len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hlen >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fwrite(hdr, 1, strlen(hdr), fp);
    for (size_t i = 0; i < data_len; i++) fputc(0, fp);
    fclose(fp);
}

static void write_hdr(const char *path, const char *hdr, size_t data_len) {
    write_raw(path, strlen(hdr), hdr, data_len);
}

/* st_open must fail with AAC_ERR_FORMAT; the message names the path, and contains `what`
 * (the tensor or key at fault) and `why` (the reason) when given. */
static void expect_format2(const char *path, const char *what, const char *why, const char *label) {
    st_file *f = NULL;
    aac_error err = {0};
    aac_status st = st_open(path, &f, &err);
    CHECK(st == AAC_ERR_FORMAT, "%s: expected FORMAT, got %s (%s)", label, aac_status_name(st),
          err.message);
    CHECK(f == NULL, "%s: handle set on failure", label);
    CHECK(strstr(err.message, path) != NULL, "%s: message lacks path: %s", label, err.message);
    if (what)
        CHECK(strstr(err.message, what) != NULL, "%s: message lacks '%s': %s", label, what,
              err.message);
    if (why)
        CHECK(strstr(err.message, why) != NULL, "%s: message lacks '%s': %s", label, why,
              err.message);
    st_close(f);
}

static void expect_format(const char *path, const char *what, const char *label) {
    expect_format2(path, what, NULL, label);
}

static void test_half_exhaustive(void) {
    /* Reference by exact arithmetic: value = mant * 2^-24 (subnormal) or (1024+mant) * 2^(e-25). */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        float got = st_half_to_float((uint16_t)h);
        if (e == 31) {
            if (m == 0 ? !(isinf(got) && (signbit(got) != 0) == (s != 0)) : !isnan(got)) bad++;
            continue;
        }
        double ref = e == 0 ? ldexp((double)m, -24) : ldexp((double)(1024 + m), (int)e - 25);
        if (s) ref = -ref;
        if (f2u(got) != f2u((float)ref)) bad++;
    }
    CHECK(bad == 0, "%d half values convert wrongly", bad);
    CHECK(f2u(st_half_to_float(0x8000)) == 0x80000000u, "-0 sign lost");
    CHECK(st_bf16_to_float(0x3F80) == 1.0f && st_bf16_to_float(0xC020) == -2.5f, "bf16");
}

static void test_roundtrip(const char *dir) {
    aac_error err = {0};
    char path[4096];
    join(path, dir, "rt.safetensors");

    const float a[6] = {1.0f, -2.5f, 3.25e-30f, -0.0f, 65504.0f, 1e30f};
    /* 1.0, -2.5, 65504, 2^-24, +inf, -inf, NaN, -0 */
    const uint16_t b[8] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0xFC00, 0x7E00, 0x8000};
    const uint16_t c[5] = {0x3F80, 0xC020, 0x477F, 0x7F80, 0x0001};
    const uint8_t d[5] = {0, 1, 127, 128, 255}; /* odd length: what follows is misaligned */
    const int32_t e[4] = {INT32_MIN, -1, 0, INT32_MAX};
    const float g[3] = {0.5f, -7.0f, 1.0e-3f};
    const double h[2] = {0.1, -1e300};
    const int64_t sa[2] = {2, 3}, sb[1] = {8}, sc[1] = {5}, sd[1] = {5}, se[2] = {2, 2},
                  sg[1] = {3}, sz[2] = {0, 4}, sh[1] = {2};

    st_writer *w = st_writer_new();
    CHECK(w != NULL, "st_writer_new");
    CHECK_OK(st_writer_add(w, "a.f32", ST_F32, 2, sa, a, &err), &err);
    CHECK_OK(st_writer_add(w, "b.f16", ST_F16, 1, sb, b, &err), &err);
    CHECK_OK(st_writer_add(w, "c.bf16", ST_BF16, 1, sc, c, &err), &err);
    CHECK_OK(st_writer_add(w, "d.u8", ST_U8, 1, sd, d, &err), &err);
    CHECK_OK(st_writer_add(w, "e.i32", ST_I32, 2, se, e, &err), &err);
    CHECK_OK(st_writer_add(w, "g.f32", ST_F32, 1, sg, g, &err), &err);
    CHECK_OK(st_writer_add(w, "z.empty", ST_F32, 2, sz, NULL, &err), &err);
    CHECK_OK(st_writer_add(w, "h.f64", ST_F64, 1, sh, h, &err), &err);
    CHECK_OK(st_writer_set_metadata(w, "format", "first", &err), &err);
    CHECK_OK(st_writer_set_metadata(w, "format", "pt", &err), &err); /* replaces */
    CHECK_OK(st_writer_set_metadata(w, "note", "say \"hi\" \xc3\xbcnic\xc3\xb6" "de", &err), &err);
    aac_status st = st_writer_add(w, "d.u8", ST_U8, 1, sd, d, &err);
    CHECK(st == AAC_ERR_ARG && strstr(err.message, "d.u8"), "duplicate: %s", err.message);
    CHECK_OK(st_writer_save(w, path, &err), &err);

    /* A save whose rename fails (target is a directory) reports the path, leaves no temp file. */
    char sub[4096];
    join(sub, dir, "adir");
    CHECK(mkdir(sub, 0700) == 0, "mkdir");
    st = st_writer_save(w, sub, &err);
    CHECK(st == AAC_ERR_IO && strstr(err.message, sub), "save onto dir: %s", err.message);
    DIR *dp = opendir(dir);
    for (struct dirent *de; dp && (de = readdir(dp));)
        CHECK(strstr(de->d_name, ".tmp") == NULL, "temp file left: %s", de->d_name);
    if (dp) closedir(dp);
    rmdir(sub);
    st_writer_free(w);

    /* The data area starts 8-aligned. */
    FILE *fp = fopen(path, "rb");
    uint8_t len8[8] = {0};
    CHECK(fp && fread(len8, 1, 8, fp) == 8, "read length");
    if (fp) fclose(fp);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    CHECK((8 + hlen) % 8 == 0, "header length %llu not padded", (unsigned long long)hlen);

    st_file *f = NULL;
    CHECK_OK(st_open(path, &f, &err), &err);
    CHECK(strcmp(st_path(f), path) == 0, "st_path");
    CHECK(st_count(f) == 8, "count %zu", st_count(f));
    const char *order[8] = {"a.f32", "b.f16", "c.bf16", "d.u8", "e.i32", "g.f32", "z.empty", "h.f64"};
    for (size_t i = 0; i < 8 && i < st_count(f); i++)
        CHECK(strcmp(st_at(f, i)->name, order[i]) == 0, "order %zu: %s", i, st_at(f, i)->name);
    CHECK(st_at(f, 8) == NULL, "st_at past end");
    CHECK(st_metadata(f, "format") && strcmp(st_metadata(f, "format"), "pt") == 0, "format");
    CHECK(st_metadata(f, "note") && strcmp(st_metadata(f, "note"), "say \"hi\" \xc3\xbcnic\xc3\xb6" "de") == 0,
          "note");
    CHECK(st_metadata(f, "absent") == NULL, "absent metadata");

    struct { const char *name; st_dtype dt; int nd; const int64_t *sh; const void *src; size_t nb; } exp[] = {
        {"a.f32", ST_F32, 2, sa, a, sizeof a}, {"b.f16", ST_F16, 1, sb, b, sizeof b},
        {"c.bf16", ST_BF16, 1, sc, c, sizeof c}, {"d.u8", ST_U8, 1, sd, d, sizeof d},
        {"e.i32", ST_I32, 2, se, e, sizeof e}, {"g.f32", ST_F32, 1, sg, g, sizeof g},
        {"z.empty", ST_F32, 2, sz, NULL, 0}, {"h.f64", ST_F64, 1, sh, h, sizeof h}};
    for (size_t i = 0; i < sizeof exp / sizeof exp[0]; i++) {
        const st_tensor *t = st_find(f, exp[i].name);
        CHECK(t != NULL, "find %s", exp[i].name);
        if (!t) continue;
        CHECK(t->dtype == exp[i].dt && t->ndim == exp[i].nd && t->nbytes == exp[i].nb,
              "%s: dtype/ndim/nbytes", exp[i].name);
        for (int k = 0; k < t->ndim && k < exp[i].nd; k++)
            CHECK(t->shape[k] == exp[i].sh[k], "%s: dim %d", exp[i].name, k);
        CHECK(t->numel * (int64_t)st_dtype_size(t->dtype) == (int64_t)t->nbytes, "%s numel", exp[i].name);
        CHECK(exp[i].nb == 0 || memcmp(t->data, exp[i].src, exp[i].nb) == 0, "%s bytes", exp[i].name);
    }

    /* F32 first in the data area: aligned, so zero-copy. */
    const float *pf = NULL;
    float *owned = NULL;
    CHECK_OK(st_get_f32(f, "a.f32", 2, sa, &pf, &owned, &err), &err);
    CHECK(owned == NULL && pf == st_find(f, "a.f32")->data && ((uintptr_t)pf & 3) == 0, "zero-copy");
    for (int i = 0; i < 6; i++) CHECK(f2u(pf[i]) == f2u(a[i]), "a[%d]", i);

    /* g.f32 sits after the odd-sized U8 tensor: misaligned, so a converted copy. */
    const st_tensor *tg = st_find(f, "g.f32");
    CHECK(tg && ((uintptr_t)tg->data & 3) != 0, "g.f32 expected misaligned in this layout");
    CHECK_OK(st_get_f32(f, "g.f32", 1, sg, &pf, &owned, &err), &err);
    CHECK(owned != NULL && pf == owned, "misaligned F32 must be copied");
    for (int i = 0; i < 3; i++) CHECK(f2u(pf[i]) == f2u(g[i]), "g[%d]", i);
    free(owned);

    CHECK_OK(st_get_f32(f, "b.f16", 1, sb, &pf, &owned, &err), &err);
    CHECK(owned != NULL, "f16 copy");
    CHECK(pf[0] == 1.0f && pf[1] == -2.5f && pf[2] == 65504.0f, "f16 normals %g %g %g", pf[0], pf[1], pf[2]);
    CHECK(pf[3] == ldexpf(1.0f, -24), "f16 subnormal %g", pf[3]);
    CHECK(isinf(pf[4]) && pf[4] > 0 && isinf(pf[5]) && pf[5] < 0, "f16 inf");
    CHECK(isnan(pf[6]) && pf[7] == 0.0f && signbit(pf[7]), "f16 nan / -0");
    free(owned);

    float bf[5];
    CHECK_OK(st_read_f32(f, "c.bf16", 1, sc, bf, &err), &err);
    CHECK(bf[0] == 1.0f && bf[1] == -2.5f && bf[2] == 65280.0f && isinf(bf[3]) &&
          bf[4] == ldexpf(1.0f, -133), "bf16 %g %g %g %g %g", bf[0], bf[1], bf[2], bf[3], bf[4]);
    float hf32[2];
    CHECK_OK(st_read_f32(f, "h.f64", 1, NULL, hf32, &err), &err);
    CHECK(hf32[0] == (float)h[0] && isinf(hf32[1]) && hf32[1] < 0, "f64 %g %g", hf32[0], hf32[1]);
    float a2[6];
    CHECK_OK(st_read_f32(f, "a.f32", 0, NULL, a2, &err), &err);
    CHECK(memcmp(a2, a, sizeof a) == 0, "read_f32 a");

    CHECK_OK(st_get_f32(f, "z.empty", 2, sz, &pf, &owned, &err), &err);
    CHECK(st_find(f, "z.empty")->numel == 0, "zero-element tensor");
    free(owned);

    /* Lookup errors. */
    st = st_get_f32(f, "no.such", 0, NULL, &pf, &owned, &err);
    CHECK(st == AAC_ERR_MISSING && strstr(err.message, "no.such") && strstr(err.message, path) &&
          pf == NULL && owned == NULL, "missing: %s", err.message);
    st = st_read_f32(f, "no.such", 0, NULL, a2, &err);
    CHECK(st == AAC_ERR_MISSING && strstr(err.message, "'no.such' not found"), "missing: %s", err.message);
    const int64_t wrong[2] = {3, 2};
    st = st_get_f32(f, "a.f32", 2, wrong, &pf, &owned, &err);
    CHECK(st == AAC_ERR_SHAPE && strstr(err.message, "a.f32") &&
          strstr(err.message, "has shape [2, 3], expected [3, 2]"), "shape: %s", err.message);
    st = st_read_f32(f, "a.f32", 1, sa, a2, &err);
    CHECK(st == AAC_ERR_SHAPE && strstr(err.message, "expected [2]"), "ndim: %s", err.message);
    st = st_get_f32(f, "d.u8", 0, NULL, &pf, &owned, &err);
    CHECK(st == AAC_ERR_SHAPE && strstr(err.message, "d.u8"), "u8 as f32: %s", err.message);
    st_close(f);
    unlink(path);

    /* Empty writer -> 0 tensors; a bare "{}" header with no padding and no data also opens. */
    w = st_writer_new();
    CHECK_OK(st_writer_save(w, path, &err), &err);
    st_writer_free(w);
    CHECK_OK(st_open(path, &f, &err), &err);
    CHECK(st_count(f) == 0 && st_find(f, "x") == NULL && st_metadata(f, "x") == NULL, "empty");
    st_close(f);
    write_hdr(path, "{}", 0);
    CHECK_OK(st_open(path, &f, &err), &err);
    CHECK(st_count(f) == 0, "bare {}");
    st_close(f);
    unlink(path);

    st = st_open("/nonexistent/dir/x.safetensors", &f, &err);
    CHECK(st == AAC_ERR_IO && strstr(err.message, "/nonexistent/dir/x.safetensors"), "io: %s", err.message);
}

static void test_malformed(const char *dir) {
    char p[4096];
    join(p, dir, "bad.safetensors");

    FILE *fp = fopen(p, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    expect_format2(p, NULL, "shorter than", "3-byte file");
    fp = fopen(p, "wb");
    fclose(fp);
    expect_format(p, NULL, "empty file");

    write_raw(p, 1000, "{}", 0);
    expect_format2(p, "1000", "exceeds the file size", "header length beyond file");
    write_raw(p, (uint64_t)1 << 40, "{}", 0);
    expect_format2(p, NULL, "absurd", "absurd header length");
    write_hdr(p, "{\"w\": {\"dtype\": \"F32\",", 4);
    expect_format(p, "JSON", "bad JSON");
    write_hdr(p, "[1, 2]", 0);
    expect_format(p, "not an object", "array header");
    write_hdr(p, "{\"w_dup\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                 "\"w_dup\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
    expect_format(p, NULL, "duplicate key");

    struct { const char *hdr; size_t data; const char *what, *why, *label; } cases[] = {
        {"{\"w_entry\": 5}", 0, "w_entry", "not a JSON object", "entry not object"},
        {"{\"w_nooff\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "w_nooff", "data_offsets", "missing data_offsets"},
        {"{\"w_nodt\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "w_nodt", "dtype", "missing dtype"},
        {"{\"w_nosh\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "w_nosh", "shape", "missing shape"},
        {"{\"w_q7\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "w_q7", "unknown dtype 'Q7'", "unknown dtype"},
        {"{\"w_neg\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", 16, "w_neg", "shape dim 0", "negative dim"},
        {"{\"w_real\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "w_real", "shape dim 0", "non-integer dim"},
        {"{\"w_ovf\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}",
         4, "w_ovf", "overflow", "shape overflow"},
        {"{\"w_far\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1000,1004]}}", 16, "w_far", "past the data area", "offsets out of range"},
        {"{\"w_rev\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 16, "w_rev", "ascending", "offsets reversed"},
        {"{\"w_three\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 16, "w_three", "two ascending", "three offsets"},
        {"{\"w_negoff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16, "w_negoff", "non-negative", "negative offset"},
        {"{\"w_len\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, "w_len", "need 16", "byte length"},
        {"{\"w_a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"w_b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, "w_a", "overlap", "overlap"},
        {"{\"__metadata__\":{\"k_int\":1}}", 0, "k_int", "not a string", "non-string metadata"},
        {"{\"__metadata__\":[\"x\"]}", 0, "__metadata__", "not a JSON object", "metadata not object"},
        {"{\"w_trunc\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}", 32, "w_trunc", "past the data area", "truncated data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_hdr(p, cases[i].hdr, cases[i].data);
        expect_format2(p, cases[i].what, cases[i].why, cases[i].label);
    }
    /* The overlap message names both tensors. */
    write_hdr(p, cases[13].hdr, cases[13].data);
    expect_format(p, "w_b", "overlap names second tensor");
    unlink(p);
}

static void test_golden(void) {
    aac_error err = {0};
    st_file *f = NULL;
    CHECK_OK(st_open(tu_golden("clip_openclip.safetensors"), &f, &err), &err);
    const int64_t sw[4] = {48, 3, 14, 14};
    const float *w = NULL;
    float *owned = NULL;
    CHECK_OK(st_get_f32(f, "visual.conv1.weight", 4, sw, &w, &owned, &err), &err);
    double sum = 0;
    for (int i = 0; i < 48 * 3 * 14 * 14; i++) sum += fabs(w[i]);
    CHECK(isfinite(sum) && sum > 0, "conv1 weights look empty");
    free(owned);
    CHECK(st_metadata(f, "config") != NULL, "config metadata");
    st_close(f);

    CHECK_OK(st_open(tu_golden("golden.safetensors"), &f, &err), &err);
    const st_tensor *t = st_find(f, "image.raw_u8");
    CHECK(t && t->dtype == ST_U8 && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 512 &&
          t->shape[2] == 512, "image.raw_u8");
    t = st_find(f, "text.sentences.tokens");
    CHECK(t && t->dtype == ST_I32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 77,
          "text.sentences.tokens");
    st_close(f);
}

int main(void) {
    char dir[] = "/tmp/aac_st_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_half_exhaustive();
    test_roundtrip(dir);
    test_malformed(dir);
    rmdir(dir);
    test_golden(); /* ../shared/golden/tiny, else the reduced set in the repository */
    return tu_finish("test_safetensors");
}
