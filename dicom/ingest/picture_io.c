/* picture_io.c - pictures (the industrial / photograph case, and training images): PNG
 * (libpng) and JPEG (libjpeg-turbo) in, recognised by content, in colour; PNG out (atomic). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
/* jpeglib.h needs stdio.h and stddef.h first */
#include <jpeglib.h>
#include <png.h>
#include <string.h>
#include <unistd.h>

#include "aaclip_dicom.h"
#include "error.h"
#include "fsutil.h"

void aac_image_release(aac_image *im) {
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

aac_status aac_image_alloc(aac_image *im, int w, int h, int channels, const char *what, aac_error *err) {
    memset(im, 0, sizeof *im);
    if (w <= 0 || h <= 0 || w > 65536 || h > 65536)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: unsupported image size %d x %d", what, w, h);
    im->px = malloc((size_t)w * h * channels);
    if (!im->px) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory for %d x %d pixels", what, w, h);
    im->w = w, im->h = h, im->channels = channels;
    return AAC_OK;
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_err_ctx { jmp_buf jb; char msg[200]; } png_err_ctx;

static void png_on_error(png_structp p, png_const_charp msg) {
    png_err_ctx *c = png_get_error_ptr(p);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jb, 1);
}
static void png_on_warning(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

static aac_status read_png(const char *path, FILE *f, aac_image *out, aac_error *err) {
    png_err_ctx ctx = {.msg = ""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_bytep *rows = NULL;
    /* volatile: assigned between setjmp and a possible longjmp */
    aac_image *volatile dst = out;
    if (!p || !info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(out, 0, sizeof *out);
    if (setjmp(ctx.jb)) {
        png_destroy_read_struct(&p, &info, NULL);
        free(rows);
        aac_image_release(dst);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: bad PNG: %s", path, ctx.msg);
    }
    png_init_io(p, f);
    png_set_user_limits(p, 65536, 65536);
    png_read_info(p, info);
    const int ct = png_get_color_type(p, info);
    png_set_strip_16(p);
    png_set_packing(p);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(p);
    png_set_strip_alpha(p);
    png_read_update_info(p, info);
    const int channels = png_get_channels(p, info);
    const int w = (int)png_get_image_width(p, info), h = (int)png_get_image_height(p, info);
    if (channels != 1 && channels != 3) png_error(p, "unexpected channel count after expansion");
    aac_status s = aac_image_alloc(out, w, h, channels, path, err);
    if (s) {
        png_destroy_read_struct(&p, &info, NULL);
        return s;
    }
    rows = malloc(sizeof *rows * h);
    if (!rows) png_error(p, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = out->px + (size_t)y * w * channels;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    return AAC_OK;
}

aac_status aac_image_write_png(const char *path, const aac_image *im, aac_error *err) {
    if (!path || !im || !im->px || (im->channels != 1 && im->channels != 3))
        return aac_fail(err, AAC_ERR_ARG, "aac_image_write_png: bad argument");
    char tmp[4200];
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st) return st;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    png_err_ctx ctx = {.msg = ""};
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    png_bytep *rows = malloc(sizeof *rows * im->h);
    if (!p || !info || !rows) {
        png_destroy_write_struct(&p, &info);
        free(rows);
        fclose(f);
        unlink(tmp);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    if (setjmp(ctx.jb)) {
        png_destroy_write_struct(&p, &info);
        free(rows);
        fclose(f);
        unlink(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write PNG: %s", path, ctx.msg);
    }
    png_init_io(p, f);
    png_set_IHDR(p, info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 im->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (int y = 0; y < im->h; y++) rows[y] = im->px + (size_t)y * im->w * im->channels;
    png_write_image(p, rows);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(rows);
    const int ok = fflush(f) == 0;
    if (fclose(f) != 0 || !ok) {
        aac_status s = aac_fail(err, AAC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        fs_discard(tmp);
        return s;
    }
    if ((st = fs_commit(tmp, path, err))) return st;
    return AAC_OK;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct jpeg_err_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err_ctx;

static void jpeg_on_error(j_common_ptr c) {
    jpeg_err_ctx *e = (jpeg_err_ctx *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}
static void jpeg_on_message(j_common_ptr c, int level) { (void)c, (void)level; }

static aac_status read_jpeg(const char *path, FILE *f, aac_image *out, aac_error *err) {
    struct jpeg_decompress_struct d;
    jpeg_err_ctx e;
    d.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_on_error;
    e.mgr.emit_message = jpeg_on_message;
    aac_image *volatile dst = out;
    memset(out, 0, sizeof *out);
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&d);
        aac_image_release(dst);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: bad JPEG: %s", path, e.msg);
    }
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    if (d.num_components == 1) d.out_color_space = JCS_GRAYSCALE;
    else if (d.jpeg_color_space == JCS_YCbCr || d.jpeg_color_space == JCS_RGB) d.out_color_space = JCS_RGB;
    else {
        jpeg_destroy_decompress(&d);
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: JPEG colour space %d (CMYK?) is not supported", path,
                        (int)d.jpeg_color_space);
    }
    jpeg_start_decompress(&d);
    aac_status s = aac_image_alloc(out, (int)d.output_width, (int)d.output_height, d.output_components, path, err);
    if (s) {
        jpeg_destroy_decompress(&d);
        return s;
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = out->px + (size_t)d.output_scanline * out->w * out->channels;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return AAC_OK;
}

/* ------------------------------------------------------------------ by content */

int aac_picture_kind(const unsigned char *head, size_t n) {
    if (n >= 8 && !png_sig_cmp(head, 0, 8)) return AAC_PICTURE_PNG;
    if (n >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return AAC_PICTURE_JPEG;
    return 0;
}

aac_status aac_picture_read(const char *path, aac_image *out, aac_error *err) {
    if (!path || !out) return aac_fail(err, AAC_ERR_ARG, "aac_picture_read: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[8];
    const size_t got = fread(head, 1, sizeof head, f);
    rewind(f);
    const int kind = aac_picture_kind(head, got);
    aac_status s = kind == AAC_PICTURE_PNG    ? read_png(path, f, out, err)
                   : kind == AAC_PICTURE_JPEG ? read_jpeg(path, f, out, err)
                                              : aac_fail(err, AAC_ERR_FORMAT, "%s: not a PNG or JPEG picture", path);
    fclose(f);
    return s;
}
