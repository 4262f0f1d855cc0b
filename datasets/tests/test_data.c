/* test_data.c - datasets, images and augmentation: JSON-lines parsing with malformed lines and
 * missing files (errors name the file and line), PNG round trips, JPEG decoding, NIfTI slices
 * with the "#z=" syntax, gzipped DICOM, augmentation determinism and image/mask consistency, nearest mask
 * resize and preprocessing against the golden tensors, phantom determinism. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* jpeglib.h needs stdio.h first */
#include <jpeglib.h>
#include <zlib.h>

#include "aaclip_data.h"
#include "aaclip_dicom.h"
#include "aaclip_synth.h"
#include "golden_ref.h"
#include "safetensors.h"
#include "testutil.h"

static char g_dir[512];

static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int slot;
    char *p = buf[slot++ & 3];
    snprintf(p, 1024, "%s/%s", g_dir, name);
    return p;
}

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(tmp_path(name), "w");
    fputs(text, f);
    fclose(f);
}

static aac_image make_image(int w, int h, int ch, int seed) {
    aac_image im = {w, h, ch, malloc((size_t)w * h * ch)};
    for (int i = 0; i < w * h * ch; i++) im.px[i] = (uint8_t)((i * 7 + seed * 13 + (i / w) * 3) % 251);
    return im;
}

static void write_jpeg(const char *path, const aac_image *im) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)im->w, c.image_height = (JDIMENSION)im->h;
    c.input_components = im->channels;
    c.in_color_space = im->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = im->px + (size_t)c.next_scanline * im->w * im->channels;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* the dataset open fails and the message contains every `want` */
static void expect_open_error(const char *jsonl_text, const char *want1, const char *want2) {
    write_text("bad.jsonl", jsonl_text);
    aac_dataset *d = NULL;
    aac_error err = {0};
    aac_status s = aac_dataset_open(tmp_path("bad.jsonl"), &d, &err);
    CHECK(s != AAC_OK, "'%s' should fail", jsonl_text);
    CHECK(strstr(err.message, want1) && (!want2 || strstr(err.message, want2)),
          "error for '%s' is '%s' (wanted '%s' and '%s')", jsonl_text, err.message, want1, want2 ? want2 : "");
    printf("  refused: %s\n", err.message);
    aac_dataset_free(d);
}

static void test_images(void) {
    aac_error err;
    /* PNG round trips, grey and RGB */
    for (int ch = 1; ch <= 3; ch += 2) {
        aac_image a = make_image(37, 23, ch, ch), b;
        CHECK_OK(aac_image_write_png(tmp_path("a.png"), &a, &err), &err);
        CHECK_OK(aac_image_read(tmp_path("a.png"), &b, &err), &err);
        CHECK(b.w == 37 && b.h == 23 && b.channels == ch && !memcmp(a.px, b.px, (size_t)37 * 23 * ch),
              "PNG round trip, %d channels", ch);
        aac_image_release(&a), aac_image_release(&b);
    }
    /* JPEG: size, channels, values close (quality 100) */
    for (int ch = 1; ch <= 3; ch += 2) {
        aac_image a = {40, 30, ch, malloc((size_t)40 * 30 * ch)}, b;
        for (int i = 0; i < 40 * 30 * ch; i++) a.px[i] = (uint8_t)(60 + (i / ch % 40) * 3);
        write_jpeg(tmp_path("a.jpg"), &a);
        CHECK_OK(aac_image_read(tmp_path("a.jpg"), &b, &err), &err);
        int maxd = 0;
        for (int i = 0; b.px && i < 40 * 30 * ch; i++) {
            const int d = abs((int)a.px[i] - (int)b.px[i]);
            if (d > maxd) maxd = d;
        }
        CHECK(b.w == 40 && b.h == 30 && b.channels == ch && maxd <= 3, "JPEG %d channels: max diff %d", ch, maxd);
        aac_image_release(&a), aac_image_release(&b);
    }
    /* malformed files: named in the error */
    aac_image x;
    write_text("trunc.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0");
    CHECK(aac_image_read(tmp_path("trunc.png"), &x, &err) == AAC_ERR_FORMAT && strstr(err.message, "trunc.png"),
          "truncated PNG: %s", err.message);
    printf("  refused: %s\n", err.message);
    write_text("junk.jpg", "\xff\xd8\xff\xe0 this is not a JPEG at all");
    CHECK(aac_image_read(tmp_path("junk.jpg"), &x, &err) == AAC_ERR_FORMAT && strstr(err.message, "junk.jpg"),
          "bad JPEG: %s", err.message);
    printf("  refused: %s\n", err.message);
    write_text("notes.txt", "hello\n");
    CHECK(aac_image_read(tmp_path("notes.txt"), &x, &err) != AAC_OK && strstr(err.message, "notes.txt"),
          "text file: %s", err.message);
    printf("  refused: %s\n", err.message);
    CHECK(aac_image_read(tmp_path("absent.png"), &x, &err) == AAC_ERR_IO && strstr(err.message, "absent.png"),
          "missing file: %s", err.message);
    CHECK(aac_image_read(tmp_path("a.png#z=1"), &x, &err) == AAC_ERR_ARG, "a PNG has one slice");
    CHECK(aac_image_read(tmp_path("a.png#z=x"), &x, &err) == AAC_ERR_ARG, "bad #z");
}

static void test_volume(void) {
    aac_error err;
    aac_volume *v = calloc(1, sizeof *v);
    v->dim[0] = 8, v->dim[1] = 6, v->dim[2] = 3, v->dim[3] = 1;
    v->voxels = malloc(sizeof(float) * 8 * 6 * 3);
    for (int i = 0; i < 8 * 6 * 3; i++) v->voxels[i] = (float)(i % 5 == 0 ? 2 : 0);
    for (int k = 0; k < 3; k++) v->spacing[k] = 1, v->direction[k * 4] = 1;
    CHECK_OK(aac_volume_write_nifti(v, tmp_path("vol.nii.gz"), &err), &err);
    aac_volume_free(v);
    aac_image im;
    CHECK(aac_image_read(tmp_path("vol.nii.gz"), &im, &err) == AAC_ERR_ARG && strstr(err.message, "#z="),
          "a 3-slice volume needs #z: %s", err.message);
    printf("  refused: %s\n", err.message);
    CHECK(aac_image_read(tmp_path("vol.nii.gz#z=3"), &im, &err) == AAC_ERR_ARG, "slice out of range");
    CHECK_OK(aac_image_read(tmp_path("vol.nii.gz#z=1"), &im, &err), &err);
    CHECK(im.w == 8 && im.h == 6 && im.channels == 1, "slice size %d x %d", im.w, im.h);
    aac_image_release(&im);
    /* as a dataset: the same volume as image and mask (mask: voxels > 0) */
    write_text("vol.jsonl", "{\"image_path\": \"vol.nii.gz#z=2\", \"label\": 1, \"class_name\": \"Liver\", "
                            "\"mask_path\": \"vol.nii.gz#z=2\"}\n");
    aac_dataset *d;
    CHECK_OK(aac_dataset_open(tmp_path("vol.jsonl"), &d, &err), &err);
    float in[3 * 16 * 16];
    uint8_t m[16 * 16];
    CHECK_OK(aac_dataset_load(d, 0, 16, NULL, 0, in, NULL, m, &err), &err);
    int on = 0;
    for (int i = 0; i < 256; i++) on += m[i];
    CHECK(on > 0 && on < 256, "mask from the label volume: %d of 256 on", on);
    aac_dataset_free(d);
}

/* A DICOM slice gzipped (*.dcm.gz, as research archives keep them) reads as the plain file. */
static void test_dicom_gz(void) {
    aac_error err;
    aac_volume *v = calloc(1, sizeof *v);
    v->dim[0] = 12, v->dim[1] = 10, v->dim[2] = 2, v->dim[3] = 1;
    v->voxels = malloc(sizeof(float) * 12 * 10 * 2);
    for (int i = 0; i < 12 * 10 * 2; i++) v->voxels[i] = (float)(i % 37) * 20 - 300;
    for (int k = 0; k < 3; k++) v->spacing[k] = 1.5, v->direction[k * 4] = 1;
    CHECK_OK(aac_write_ct_series(v, NULL, tmp_path("ct"), &err), &err);
    aac_volume_free(v);
    FILE *f = fopen(tmp_path("ct/IM0002.dcm"), "rb");
    gzFile g = gzopen(tmp_path("IM0002.dcm.gz"), "wb");
    CHECK(f && g, "cannot gzip the slice");
    char buf[4096];
    size_t n;
    while (f && g && (n = fread(buf, 1, sizeof buf, f)) > 0) gzwrite(g, buf, (unsigned)n);
    if (f) fclose(f);
    if (g) gzclose(g);
    aac_image plain, gz;
    CHECK_OK(aac_image_read(tmp_path("ct/IM0002.dcm"), &plain, &err), &err);
    CHECK_OK(aac_image_read(tmp_path("IM0002.dcm.gz"), &gz, &err), &err);
    CHECK(plain.w == 12 && gz.w == 12 && plain.h == 10 && gz.h == 10 && !memcmp(plain.px, gz.px, 120),
          "the gzipped slice differs from the plain one");
    aac_image_release(&plain);
    aac_image_release(&gz);
}

static void test_dataset(void) {
    aac_error err;
    aac_image a = make_image(20, 10, 1, 1), mk = {20, 10, 1, calloc(200, 1)};
    for (int i = 0; i < 200; i++) mk.px[i] = (i % 20 > 10) ? 255 : 0;
    mkdir(tmp_path("img"), 0755);
    CHECK_OK(aac_image_write_png(tmp_path("img/a.png"), &a, &err), &err);
    CHECK_OK(aac_image_write_png(tmp_path("img/m.png"), &mk, &err), &err);
    aac_image small = make_image(10, 10, 1, 2);
    CHECK_OK(aac_image_write_png(tmp_path("img/small.png"), &small, &err), &err);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"image_path\": \"img/a.png\", \"label\": 1, \"class_name\": \"Brain\", \"mask_path\": \"img/m.png\"}\n"
             "\n   \n"
             "{\"image_path\": \"%s\", \"label\": false, \"class_name\": \"bottle\"}\n"
             "{\"image_path\": \"img/a.png\", \"label\": 0, \"class_name\": \"x\", \"mask_path\": null}\r\n",
             tmp_path("img/a.png"));
    write_text("good.jsonl", text);
    aac_dataset *d;
    CHECK_OK(aac_dataset_open(tmp_path("good.jsonl"), &d, &err), &err);
    CHECK(aac_dataset_count(d) == 3, "3 samples, got %d", aac_dataset_count(d));
    const aac_sample *s0 = aac_dataset_sample(d, 0), *s1 = aac_dataset_sample(d, 1), *s2 = aac_dataset_sample(d, 2);
    CHECK(s0 && !strcmp(s0->image, tmp_path("img/a.png")) && s0->mask && s0->label == 1 && s0->line == 1 &&
              !strcmp(s0->class_name, "Brain"),
          "sample 0 (relative paths resolved against the file's folder)");
    CHECK(s1 && !strcmp(s1->image, tmp_path("img/a.png")) && !s1->mask && s1->label == 0 && s1->line == 4,
          "sample 1 (absolute path, bool label, no mask)");
    CHECK(s2 && !s2->mask && s2->line == 5, "sample 2 (null mask)");
    /* loading: the mask follows the nearest rule; no mask = zeros */
    float in[3 * 40 * 40], mf[40 * 40];
    uint8_t mu[40 * 40];
    CHECK_OK(aac_dataset_load(d, 0, 40, NULL, 0, in, mf, mu, &err), &err);
    int ok = 1;
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++) ok &= mu[y * 40 + x] == ((x / 2) % 20 > 10) && mf[y * 40 + x] == mu[y * 40 + x];
    CHECK(ok, "mask nearest resize 20x10 -> 40x40");
    CHECK_OK(aac_dataset_load(d, 1, 40, NULL, 0, in, mf, mu, &err), &err);
    int any = 0;
    for (int i = 0; i < 1600; i++) any |= mu[i];
    CHECK(!any, "no mask: zeros");
    aac_dataset_free(d);

    /* a mask of another size is refused at load time, naming both files and the line */
    write_text("size.jsonl",
               "{\"image_path\": \"img/a.png\", \"label\": 1, \"class_name\": \"c\", \"mask_path\": \"img/small.png\"}\n");
    CHECK_OK(aac_dataset_open(tmp_path("size.jsonl"), &d, &err), &err);
    CHECK(aac_dataset_load(d, 0, 40, NULL, 0, in, mf, mu, &err) == AAC_ERR_SHAPE && strstr(err.message, "size.jsonl:1") &&
              strstr(err.message, "small.png"),
          "mask size: %s", err.message);
    printf("  refused: %s\n", err.message);
    aac_dataset_free(d);

    /* malformed lines and missing files */
    expect_open_error("{\"image_path\": \"img/a.png\", \"label\": 1, \"class_name\": \"c\"}\n{\"image_path\": \n",
                      "bad.jsonl:2", "bad JSON");
    expect_open_error("{\"label\": 1, \"class_name\": \"c\"}\n", "bad.jsonl:1", "image_path");
    expect_open_error("{\"image_path\": \"img/a.png\", \"class_name\": \"c\"}\n", "bad.jsonl:1", "label");
    expect_open_error("{\"image_path\": \"img/a.png\", \"label\": 2, \"class_name\": \"c\"}\n", "bad.jsonl:1", "label");
    expect_open_error("{\"image_path\": \"img/a.png\", \"label\": 0}\n", "bad.jsonl:1", "class_name");
    expect_open_error("{\"image_path\": \"img/a.png\", \"label\": 0, \"class_name\": \"c\", \"mask_path\": 3}\n",
                      "bad.jsonl:1", "mask_path");
    expect_open_error("[1, 2]\n", "bad.jsonl:1", "object");
    expect_open_error("\n{\"image_path\": \"img/nope.png\", \"label\": 0, \"class_name\": \"c\"}\n", "bad.jsonl:2",
                      "img/nope.png");
    expect_open_error("{\"image_path\": \"img/a.png\", \"label\": 1, \"class_name\": \"c\", \"mask_path\": \"m/gone.png\"}\n",
                      "bad.jsonl:1", "m/gone.png");
    expect_open_error("\n\n", "bad.jsonl", "no samples");
    aac_dataset *none;
    CHECK(aac_dataset_open(tmp_path("absent.jsonl"), &none, &err) == AAC_ERR_IO && strstr(err.message, "absent.jsonl"),
          "missing dataset file");
    aac_image_release(&a), aac_image_release(&mk), aac_image_release(&small);
}

static void test_augment(void) {
    aac_error err;
    /* image = 200 exactly where the mask is set, other values never 200 */
    const int W = 64, H = 48;
    aac_image base = {W, H, 1, malloc((size_t)W * H)}, bmask = {W, H, 1, malloc((size_t)W * H)};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const int in = (x - 40) * (x - 40) + (y - 20) * (y - 20) < 64 || (x > 8 && x < 14 && y > 30);
            bmask.px[y * W + x] = in ? 255 : 0;
            base.px[y * W + x] = in ? 200 : (uint8_t)(20 + (x * 3 + y) % 150);
        }
    const aac_augment a1 = aac_augment_default(1), a2 = aac_augment_default(2);
    int consistent = 1, changed = 0, masks_same = 1, jittered = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        aac_image im = {W, H, 1, malloc((size_t)W * H)}, m = {W, H, 1, malloc((size_t)W * H)};
        aac_image im2 = {W, H, 1, malloc((size_t)W * H)}, m2 = {W, H, 1, malloc((size_t)W * H)};
        memcpy(im.px, base.px, (size_t)W * H), memcpy(m.px, bmask.px, (size_t)W * H);
        memcpy(im2.px, base.px, (size_t)W * H), memcpy(m2.px, bmask.px, (size_t)W * H);
        CHECK_OK(aac_augment_apply(&a1, seed, &im, &m, &err), &err);
        for (int i = 0; i < W * H; i++) consistent &= (im.px[i] == 200) == (m.px[i] == 255);
        changed += memcmp(m.px, bmask.px, (size_t)W * H) != 0;
        /* same seed, same draw; stage 2's jitter does not change the geometry */
        CHECK_OK(aac_augment_apply(&a2, seed, &im2, &m2, &err), &err);
        masks_same &= !memcmp(m.px, m2.px, (size_t)W * H);
        jittered += memcmp(im.px, im2.px, (size_t)W * H) != 0;
        aac_image again = {W, H, 1, malloc((size_t)W * H)}, am = {W, H, 1, malloc((size_t)W * H)};
        memcpy(again.px, base.px, (size_t)W * H), memcpy(am.px, bmask.px, (size_t)W * H);
        CHECK_OK(aac_augment_apply(&a2, seed, &again, &am, &err), &err);
        CHECK(!memcmp(again.px, im2.px, (size_t)W * H) && !memcmp(am.px, m2.px, (size_t)W * H),
              "seed %d: not deterministic", (int)seed);
        aac_image_release(&im), aac_image_release(&m), aac_image_release(&im2), aac_image_release(&m2);
        aac_image_release(&again), aac_image_release(&am);
    }
    printf("  augmentation: 40 draws, %d changed the geometry, %d jittered\n", changed, jittered);
    CHECK(consistent, "image and mask moved together");
    CHECK(changed >= 30 && changed < 40, "geometry changes in most draws (%d of 40)", changed);
    CHECK(masks_same, "colour jitter leaves the geometry alone");
    CHECK(jittered >= 25, "stage 2 jitters most draws (%d of 40)", jittered);
    /* flips alone are exact mirrors */
    aac_augment fl = {.hflip_p = 1, .vflip_p = 1};
    aac_image im = {W, H, 1, malloc((size_t)W * H)};
    memcpy(im.px, base.px, (size_t)W * H);
    CHECK_OK(aac_augment_apply(&fl, 5, &im, NULL, &err), &err);
    int mirror = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) mirror &= im.px[y * W + x] == base.px[(H - 1 - y) * W + (W - 1 - x)];
    CHECK(mirror, "h+v flip");
    aac_augment none = {0};
    memcpy(im.px, base.px, (size_t)W * H);
    CHECK_OK(aac_augment_apply(&none, 5, &im, NULL, &err), &err);
    CHECK(!memcmp(im.px, base.px, (size_t)W * H), "all probabilities 0: unchanged");
    aac_image_release(&im), aac_image_release(&base), aac_image_release(&bmask);
    CHECK(aac_seed_mix(1, 2, 3, 4) != aac_seed_mix(1, 2, 3, 5) && aac_seed_mix(1, 2, 3, 4) == aac_seed_mix(1, 2, 3, 4),
          "seed mixing");
}

static void test_phantoms(void) {
    aac_error err;
    aac_phantom_set_params p = aac_phantom_set_default_params();
    p.volumes = 2, p.size = 96, p.slices = 8, p.min_lesions = 1, p.max_lesions = 3;
    p.class_name = "bad\"name";
    CHECK(aac_phantom_dataset_write(tmp_path("ph"), &p, NULL, NULL, &err) == AAC_ERR_ARG,
          "quotes in a class name are refused");
    p.class_name = "liver";
    int n = 0, anom = 0;
    CHECK_OK(aac_phantom_dataset_write(tmp_path("ph"), &p, &n, &anom, &err), &err);
    CHECK(n == 16 && anom > 0 && anom < 16, "2 volumes of 8 slices: %d lines, %d with lesions", n, anom);
    aac_dataset *d;
    CHECK_OK(aac_dataset_open(tmp_path("ph/data.jsonl"), &d, &err), &err);
    int labelled = 0, mask_ok = 1, dark_lesions = 0;
    for (int i = 0; i < aac_dataset_count(d); i++) {
        const aac_sample *s = aac_dataset_sample(d, i);
        labelled += s->label;
        if (!s->label) {
            mask_ok &= s->mask == NULL;
            continue;
        }
        aac_image im, mk;
        CHECK_OK(aac_image_read(s->image, &im, &err), &err);
        CHECK_OK(aac_image_read(s->mask, &mk, &err), &err);
        /* a hypodense lesion (0 HU) is darker than liver (60 HU) in the abdomen window */
        double in = 0, out = 0;
        int nin = 0, nout = 0;
        for (int k = 0; k < 96 * 96; k++) {
            if (mk.px[k]) in += im.px[k], nin++;
            else out += im.px[k], nout++;
        }
        mask_ok &= nin > 0 && im.w == 96 && mk.w == 96;
        dark_lesions += nin > 0 && in / nin < 120;
        aac_image_release(&im), aac_image_release(&mk);
    }
    CHECK(labelled == anom && mask_ok, "labels and masks agree (%d of %d)", labelled, anom);
    CHECK(dark_lesions > 0, "hypodense lesions are dark in the abdomen window");
    aac_dataset_free(d);
    /* deterministic: the same parameters write the same files */
    CHECK_OK(aac_phantom_dataset_write(tmp_path("ph2"), &p, NULL, NULL, &err), &err);
    size_t na, nb;
    char *a = tu_read_file(tmp_path("ph/data.jsonl"), &na), *b = tu_read_file(tmp_path("ph2/data.jsonl"), &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na), "same dataset file");
    free(a), free(b);
    a = tu_read_file(tmp_path("ph/images/v0001_z004.png"), &na), b = tu_read_file(tmp_path("ph2/images/v0001_z004.png"), &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na), "same slice");
    free(a), free(b);
}

/* The golden slices as PNG load to image.input (1e-6) and image.mask (exact): the golden set of
 * ../shared, else the reduced one in the repository (image.input sampled, image.mask as U8). */
static void test_golden_preprocessing(void) {
    st_file *g;
    aac_error err;
    CHECK_OK(st_open(tu_golden("golden.safetensors"), &g, &err), &err);
    const st_tensor *raw = st_find(g, "image.raw_u8"), *mraw = st_find(g, "image.mask_u8");
    const st_tensor *tin = st_find(g, "image.input"), *tmask = st_find(g, "image.mask");
    const int H = (int)raw->shape[1], W = (int)raw->shape[2], S = 518;
    float *ref = malloc(sizeof(float) * tin->numel), *mref = malloc(sizeof(float) * 2 * S * S);
    CHECK_OK(st_read_f32(g, "image.input", 0, NULL, ref, &err), &err);
    CHECK(tmask->numel == 2 * S * S, "image.mask size");
    if (tmask->dtype == ST_U8)
        for (int64_t i = 0; i < tmask->numel; i++) mref[i] = ((const uint8_t *)tmask->data)[i];
    else
        CHECK_OK(st_read_f32(g, "image.mask", 0, NULL, mref, &err), &err);
    FILE *js = fopen(tmp_path("golden.jsonl"), "w");
    for (int b = 0; b < 2; b++) {
        aac_image im = {W, H, 1, (uint8_t *)raw->data + (size_t)b * W * H};
        aac_image mk = {W, H, 1, (uint8_t *)mraw->data + (size_t)b * W * H};
        char name[64], mname[64];
        snprintf(name, sizeof name, "g%d.png", b);
        snprintf(mname, sizeof mname, "gm%d.png", b);
        CHECK_OK(aac_image_write_png(tmp_path(name), &im, &err), &err);
        CHECK_OK(aac_image_write_png(tmp_path(mname), &mk, &err), &err);
        fprintf(js, "{\"image_path\": \"%s\", \"label\": %d, \"class_name\": \"Brain\", \"mask_path\": \"%s\"}\n", name,
                b == 0, mname);
    }
    fclose(js);
    aac_dataset *d;
    CHECK_OK(aac_dataset_open(tmp_path("golden.jsonl"), &d, &err), &err);
    float *in = malloc(sizeof(float) * 2 * 3 * S * S), *mf = malloc(sizeof(float) * 2 * S * S);
    for (int b = 0; b < 2; b++) {
        CHECK_OK(aac_dataset_load(d, b, S, NULL, 0, in + (size_t)b * 3 * S * S, mf + (size_t)b * S * S, NULL, &err),
                 &err);
        const double em = tu_max_abs(mf + (size_t)b * S * S, mref + (size_t)b * S * S, (size_t)S * S);
        printf("  golden image %d via PNG: mask max abs err %.2g\n", b, em);
        CHECK(em == 0, "golden mask %d", b);
    }
    const int64_t dims[4] = {2, 3, S, S};
    size_t n = 0;
    float *picked = gr_pick(g, "image.input", in, 4, dims, &n);
    CHECK(picked && n == (size_t)tin->numel, "image.input shape");
    if (picked) {
        const double e = tu_max_abs(picked, ref, n);
        printf("  golden images via PNG: input max abs err %.2g%s\n", e, gr_sampled(g, "image.input") ? " (sampled)" : "");
        CHECK(e <= 1e-6, "golden input: %g", e);
    }
    aac_dataset_free(d);
    free(in), free(mf), free(ref), free(mref), free(picked);
    st_close(g);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/test_data_%d", AACLIP_BINARY_DIR, (int)getpid());
    mkdir(g_dir, 0755);
    printf("images\n");
    test_images();
    printf("volumes\n");
    test_volume();
    printf("gzipped DICOM\n");
    test_dicom_gz();
    printf("datasets\n");
    test_dataset();
    printf("augmentation\n");
    test_augment();
    printf("phantoms\n");
    test_phantoms();
    printf("golden preprocessing\n");
    test_golden_preprocessing();
    int rc = tu_finish("test_data");
    if (!rc) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return rc;
}
