/* fuzz_dicomdir.c - libFuzzer target for DICOMDIR handling: the input is a DICOMDIR in a
 * folder that also holds two small images (IMG/SER1/IM1 and img/ser2/im2, written once from
 * the seed-independent fixture below). dcm_read_dicomdir (DcmDicomDir's record tree, MRDRs,
 * unlinked records) must return file IDs or a reason; the scan of the folder (discover.c:
 * the DICOMDIR first, file IDs resolved by case, ".." and empty components refused) must
 * finish with every note naming something, and whatever it finds must load. */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include "fuzz_util.h"
#include "ingest.h"

/* A minimal CT image (explicit VR little endian, 4 x 4 int16), enough for the scan to list. */
static size_t tiny_image(uint8_t *b, const char *sop) {
    size_t n = 0;
    memset(b, 0, 128);
    memcpy(b + 128, "DICM", 4);
    n = 132;
#define EL(g, e, vr, s)                                                                           \
    do {                                                                                          \
        size_t l = strlen(s), p = l & 1;                                                          \
        b[n++] = (g) & 0xFF, b[n++] = (g) >> 8, b[n++] = (e) & 0xFF, b[n++] = (e) >> 8;           \
        b[n++] = vr[0], b[n++] = vr[1], b[n++] = (uint8_t)((l + p) & 0xFF), b[n++] = (uint8_t)((l + p) >> 8); \
        memcpy(b + n, s, l), n += l;                                                              \
        if (p) b[n++] = vr[0] == 'U' && vr[1] == 'I' ? 0 : ' ';                                   \
    } while (0)
#define US(g, e, v)                                                                     \
    do {                                                                                \
        b[n++] = (g) & 0xFF, b[n++] = (g) >> 8, b[n++] = (e) & 0xFF, b[n++] = (e) >> 8; \
        b[n++] = 'U', b[n++] = 'S', b[n++] = 2, b[n++] = 0, b[n++] = (v) & 0xFF, b[n++] = (v) >> 8; \
    } while (0)
    EL(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
    EL(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
    EL(0x0008, 0x0018, "UI", sop);
    EL(0x0008, 0x0060, "CS", "CT");
    EL(0x0020, 0x000D, "UI", "1.2.3.4");
    EL(0x0020, 0x000E, "UI", "1.2.3.4.5");
    EL(0x0020, 0x0032, "DS", "0\\0\\0");
    EL(0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0");
    US(0x0028, 0x0002, 1);
    EL(0x0028, 0x0004, "CS", "MONOCHROME2");
    US(0x0028, 0x0010, 4);
    US(0x0028, 0x0011, 4);
    US(0x0028, 0x0100, 16);
    US(0x0028, 0x0101, 16);
    US(0x0028, 0x0102, 15);
    US(0x0028, 0x0103, 1);
    b[n++] = 0xE0, b[n++] = 0x7F, b[n++] = 0x10, b[n++] = 0x00, b[n++] = 'O', b[n++] = 'W', b[n++] = 0, b[n++] = 0;
    b[n++] = 32, b[n++] = 0, b[n++] = 0, b[n++] = 0;
    for (int i = 0; i < 32; i++) b[n++] = (uint8_t)i;
#undef EL
#undef US
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fixture; /* fuzzer-only state: the two images are written once */
    if (!fixture) {
        uint8_t img[1024];
        fz_write("media/IMG/SER1/IM1", img, tiny_image(img, "1.2.3.4.5.1"));
        fz_write("media/img/ser2/im2", img, tiny_image(img, "1.2.3.4.5.2"));
        fixture = 1;
    }
    const char *path = fz_write("media/DICOMDIR", data, size);
    strlist ids = {0};
    aac_error e = {0};
    aac_status st = dcm_read_dicomdir(path, &ids, &e);
    if (st != AAC_OK) fz_check_error(st, &e);
    for (int i = 0; i < ids.n; i++) FZ_ASSERT(ids.items[i] && ids.items[i][0]);
    strlist_free(&ids);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/media", fz_dir());
    const char *paths[] = {dir};
    fz_scan_load(paths, 1);
    const char *as_input[] = {path}; /* a DICOMDIR named as input stands for what it lists */
    fz_scan_load(as_input, 1);
    return 0;
}
