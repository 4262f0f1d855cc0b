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
    const int ybr422 = f->ybr == 2 && f->spp == 3 && !f->encapsulated;
    if (ybr422) n = n / 3 * 2;
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
    if (ybr422) {
        /* Y1 Y2 Cb Cr per pair of pixels -> Y1 Cb Cr Y2 Cb Cr, from the end backwards: pair p
         * is read before its 6 samples overwrite anything not yet read (6p >= 4p + 4 for p > 0). */
        for (size_t p = n / 4; p-- > 0;) {
            const int32_t y1 = out[4 * p], y2 = out[4 * p + 1], cb = out[4 * p + 2], cr = out[4 * p + 3];
            int32_t *o = out + 6 * p;
            o[0] = y1, o[1] = cb, o[2] = cr, o[3] = y2, o[4] = cb, o[5] = cr;
        }
        return 0;
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
