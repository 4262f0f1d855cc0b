/* j2k.c - the image header of a JPEG 2000 codestream (its SIZ marker segment, PS3.5 A.4.4 /
 * ISO 15444-1 A.5.1), raw or inside a JP2 file's jp2c box, bounds-checked against the fragment:
 * j2k_decode.c compares it with the DICOM header before OpenJPEG sees anything, and tells a
 * fragment that starts a frame from one that continues it. */
#include <string.h>

#include "ingest.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }

static int parse_siz(const uint8_t *p, size_t n, j2k_info *out) {
    /* SOC (FF4F) then SIZ (FF51) with its length, Rsiz, image and tile sizes and offsets, Csiz */
    if (n < 42 || be16(p) != 0xFF4F || be16(p + 2) != 0xFF51) return -2;
    const unsigned lsiz = be16(p + 4), csiz = be16(p + 40);
    if (csiz < 1 || csiz > 16384 || lsiz != 38 + 3 * csiz) return -2;
    if (n < 4 + (size_t)lsiz) return -2;
    const uint32_t xsiz = be32(p + 8), ysiz = be32(p + 12), xo = be32(p + 16), yo = be32(p + 20);
    const uint32_t xt = be32(p + 24), yt = be32(p + 28), xto = be32(p + 32), yto = be32(p + 36);
    if (xo >= xsiz || yo >= ysiz || xt == 0 || yt == 0 || xto > xo || yto > yo) return -2;
    memset(out, 0, sizeof *out);
    out->width = xsiz - xo;
    out->height = ysiz - yo;
    out->components = (int)csiz;
    out->tiles = (((uint64_t)xsiz - xto + xt - 1) / xt) * (((uint64_t)ysiz - yto + yt - 1) / yt);
    out->subsampled = 0;
    for (unsigned c = 0; c < csiz; c++) {
        const uint8_t *s = p + 42 + 3 * c;
        const int depth = (s[0] & 0x7F) + 1;
        if (depth > 38 || s[1] == 0 || s[2] == 0) return -2;
        if (depth > out->max_depth) out->max_depth = depth;
        if (s[0] & 0x80) out->is_signed = 1;
        if (s[1] != 1 || s[2] != 1) out->subsampled = 1;
    }
    return 0;
}

int j2k_read_info(const uint8_t *p, size_t n, j2k_info *out) {
    if (n >= 4 && be16(p) == 0xFF4F) return parse_siz(p, n, out);
    /* JP2: signature box, then boxes (length, type); the codestream is in "jp2c". */
    static const uint8_t sig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
    if (n < 12 || memcmp(p, sig, 12)) return -1;
    size_t off = 12;
    while (off + 8 <= n) {
        uint64_t len = be32(p + off);
        size_t head = 8;
        if (len == 1) { /* extended length */
            if (off + 16 > n) return -2;
            len = (uint64_t)be32(p + off + 8) << 32 | be32(p + off + 12);
            head = 16;
        } else if (len == 0) {
            len = n - off; /* to the end */
        }
        if (len < head) return -2;
        if (!memcmp(p + off + 4, "jp2c", 4)) return parse_siz(p + off + head, n - off - head, out);
        if (len > n - off) return -2;
        off += (size_t)len;
    }
    return -2;
}
