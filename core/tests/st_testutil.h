/* st_testutil.h - safetensors fixtures shared by the test programs: reduced-precision copies of
 * weight files. Include after testutil.h and safetensors.h. */
#ifndef AAC_ST_TESTUTIL_H
#define AAC_ST_TESTUTIL_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* float -> IEEE half, round to nearest even, subnormals included (as torch's .half()). */
static inline uint16_t tu_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, m = x & 0x7fffff;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        m |= 0x800000;
        int shift = 14 - e;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

/* float -> bfloat16, round to nearest even. */
static inline uint16_t tu_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* Copies src to dst with every tensor stored as F16 (half = 1) or BF16 (half = 0); the
 * "config" metadata is kept. */
static inline void tu_write_reduced(const char *src, const char *dst, int half) {
    aac_error err;
    st_file *f;
    CHECK_OK(st_open(src, &f, &err), &err);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        float *v = malloc(sizeof(float) * (t->numel ? t->numel : 1));
        uint16_t *h = malloc(sizeof(uint16_t) * (t->numel ? t->numel : 1));
        CHECK_OK(st_read_f32(f, t->name, 0, NULL, v, &err), &err);
        for (int64_t k = 0; k < t->numel; k++) h[k] = half ? tu_f32_to_f16(v[k]) : tu_f32_to_bf16(v[k]);
        CHECK_OK(st_writer_add(w, t->name, half ? ST_F16 : ST_BF16, t->ndim, t->shape, h, &err), &err);
        free(v), free(h);
    }
    if (st_metadata(f, "config"))
        CHECK_OK(st_writer_set_metadata(w, "config", st_metadata(f, "config"), &err), &err);
    CHECK_OK(st_writer_save(w, dst, &err), &err);
    st_writer_free(w);
    st_close(f);
}
#endif
