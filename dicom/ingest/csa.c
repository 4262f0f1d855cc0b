/* csa.c - the values aaclip needs from a Siemens CSA image header (0029,xx10):
 * NumberOfImagesInMosaic, SliceNormalVector and ProtocolSliceNumber (dcm2niix stores the slices
 * of a series whose first image has ProtocolSliceNumber > 1 reversed). Layout as documented by
 * nibabel's csareader
 * (CSA1 and CSA2 "SV10"); every length is checked against the buffer, the header is vendor
 * data and may be corrupt. */
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

static int rd_i32(const uint8_t *d, size_t len, size_t off, int32_t *v) {
    if (off > len || len - off < 4) return -1;
    *v = (int32_t)((uint32_t)d[off] | (uint32_t)d[off + 1] << 8 | (uint32_t)d[off + 2] << 16 |
                   (uint32_t)d[off + 3] << 24);
    return 0;
}

/* Item text to double; items are NUL-padded decimal strings. */
static int item_double(const uint8_t *p, size_t n, double *out) {
    char buf[64];
    if (n == 0) return -1;
    if (n > sizeof buf - 1) n = sizeof buf - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end == buf) return -1;
    *out = v;
    return 0;
}

void csa_parse(const uint8_t *d, size_t len, int *n_mosaic, int *has_normal, double normal[3]) {
    int slice = -1;
    csa_parse_slice(d, len, n_mosaic, has_normal, normal, &slice);
}

void csa_parse_slice(const uint8_t *d, size_t len, int *n_mosaic, int *has_normal, double normal[3],
                     int *protocol_slice) {
    int type = 1;
    size_t off = 0;
    if (len >= 4 && !memcmp(d, "SV10", 4)) {
        type = 2;
        off = 8;
    }
    int32_t n_tags, unused;
    if (rd_i32(d, len, off, &n_tags) || rd_i32(d, len, off + 4, &unused)) return;
    if (n_tags < 1 || n_tags > 1024) return;
    off += 8;
    int32_t tag0_items = 0;
    for (int t = 0; t < n_tags; t++) {
        if (off > len || len - off < 84) return;
        char name[65];
        memcpy(name, d + off, 64);
        name[64] = '\0';
        int32_t n_items;
        if (rd_i32(d, len, off + 76, &n_items) || n_items < 0 || n_items > 1024) return;
        if (t == 0) tag0_items = n_items;
        off += 84;
        double vals[3];
        int nv = 0;
        for (int i = 0; i < n_items; i++) {
            int32_t x0, x1;
            /* four int32 per item, then the value: all 16 bytes must be there before off moves
             * past them, or len - off below wraps around */
            if (off > len || len - off < 16 || rd_i32(d, len, off, &x0) || rd_i32(d, len, off + 4, &x1)) return;
            off += 16;
            int64_t item_len = type == 2 ? x1 : (int64_t)x0 - tag0_items;
            if (item_len < 0 || (uint64_t)item_len > len - off) return;
            if (nv < 3 && item_double(d + off, (size_t)item_len, &vals[nv]) == 0) nv++;
            off += (size_t)item_len;
            off += (4 - item_len % 4) % 4;
        }
        if (!strcmp(name, "NumberOfImagesInMosaic") && nv >= 1 && vals[0] >= 1 && vals[0] < 4096)
            *n_mosaic = (int)vals[0];
        else if (!strcmp(name, "SliceNormalVector") && nv == 3 && geom_direction_ok(vals)) {
            memcpy(normal, vals, sizeof vals);
            *has_normal = 1;
        } else if (!strcmp(name, "ProtocolSliceNumber") && nv >= 1 && vals[0] >= 0 && vals[0] < 65536)
            *protocol_slice = (int)(vals[0] + 0.5);
    }
}
