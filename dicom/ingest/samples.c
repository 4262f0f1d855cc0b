/* samples.c - decoded pixel bytes to stored values, the one place that knows BitsStored,
 * HighBit, signedness and planar configuration. */
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

static int32_t stored_value(uint32_t raw, int shift, uint32_t mask, int bits, int is_signed) {
    uint32_t v = (raw >> shift) & mask;
    if (is_signed && bits < 32 && (v >> (bits - 1)) & 1u) v |= ~mask; /* sign-extend */
    return (int32_t)v;
}

int samples_unpack(const void *raw, size_t n, const dcm_file *f, int planar, int frames, int32_t *out) {
    const int bits = f->bits_stored, shift = f->high_bit + 1 - f->bits_stored;
    const uint32_t mask = bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u);
    const int sgn = f->pixel_rep == 1;
    const uint8_t *b = raw;
    for (size_t i = 0; i < n; i++) {
        uint32_t r;
        if (f->bits_alloc == 8) r = b[i];
        else if (f->bits_alloc == 16) r = (uint32_t)b[2 * i] | (uint32_t)b[2 * i + 1] << 8;
        else r = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                 (uint32_t)b[4 * i + 3] << 24;
        out[i] = stored_value(r, shift, mask, bits, sgn);
    }
    if (f->spp == 3 && planar == 1 && frames > 0) {
        /* RRR...GGG...BBB per frame -> RGBRGB... */
        const size_t px = (size_t)f->rows * f->cols;
        int32_t *tmp = malloc(px * 3 * sizeof *tmp);
        if (!tmp) return -1;
        for (int fr = 0; fr < frames; fr++) {
            int32_t *p = out + (size_t)fr * px * 3;
            for (size_t i = 0; i < px; i++)
                for (int c = 0; c < 3; c++) tmp[3 * i + c] = p[(size_t)c * px + i];
            memcpy(p, tmp, px * 3 * sizeof *tmp);
        }
        free(tmp);
    }
    return 0;
}
