/* j2k_decode.c - JPEG 2000 pixel data decoded with OpenJPEG (libopenjp2), from memory.
 * Free DCMTK has no JPEG 2000 decoder; dcm_pixels.cpp hands over the encapsulated fragments.
 * Every frame's image header is checked against the DICOM header twice: its SIZ (j2k.c) before
 * OpenJPEG sees anything, then the image OpenJPEG read from the header, before decoding (size,
 * components, subsampling, precision); the decoded image again (a JP2 palette or channel
 * definition can change it); only then are samples copied, with bounds from the DICOM header.
 * OpenJPEG reads from a bounded memory stream (our read/skip/seek) and in strict mode (a cut
 * codestream fails instead of decoding partly); its messages go into the error, never to
 * stderr. */
#include <openjpeg.h>

/* ITK installs its own, mangled OpenJPEG 2 headers (itk_opj_*) under its include folder. */
#if defined(opj_decode) || !defined(OPJ_VERSION_MAJOR)
#error "openjpeg.h is not OpenJPEG's own (pkg-config libopenjp2): check the include path order"
#endif

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest.h"

/* ---- the bounded memory stream */
typedef struct mem_stream {
    const uint8_t *p;
    size_t len, pos;
} mem_stream;

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user) {
    mem_stream *m = user;
    if (m->pos >= m->len) return (OPJ_SIZE_T)-1; /* end of stream */
    const size_t left = m->len - m->pos;
    if (n > left) n = left;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user) {
    mem_stream *m = user;
    if (n < 0) {
        const uint64_t back = (uint64_t)0 - (uint64_t)n;
        if (back > m->pos) return -1;
        m->pos -= (size_t)back;
        return n;
    }
    const size_t left = m->len - m->pos;
    if (left == 0) return -1; /* 0 would make OpenJPEG's skip loop spin */
    if ((uint64_t)n > left) n = (OPJ_OFF_T)left;
    m->pos += (size_t)n;
    return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user) {
    mem_stream *m = user;
    if (n < 0 || (uint64_t)n > m->len) return OPJ_FALSE;
    m->pos = (size_t)n;
    return OPJ_TRUE;
}

/* ---- OpenJPEG's messages: the first error (and the first warning, for a failure without one) */
typedef struct opj_messages {
    char error[200], warning[200];
} opj_messages;

static void keep_message(char *dst, size_t cap, const char *msg) {
    if (dst[0] || !msg) return;
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' ')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, msg, n);
    dst[n] = 0;
}
static void on_error(const char *msg, void *user) {
    opj_messages *m = user;
    keep_message(m->error, sizeof m->error, msg);
}
static void on_warning(const char *msg, void *user) {
    opj_messages *m = user;
    keep_message(m->warning, sizeof m->warning, msg);
}
static void on_info(const char *msg, void *user) { (void)msg, (void)user; }

static const char *opj_said(const opj_messages *m) {
    return m->error[0] ? m->error : m->warning[0] ? m->warning : "no message";
}

/* ---- checks of OpenJPEG's image against the DICOM header */
/* 0 when image agrees with f (size, components, no subsampling, precision up to Bits
 * Allocated, the components alike); else a description in why. decoded: also the samples. */
static int image_problem(const opj_image_t *im, const dcm_file *f, int decoded, char *why, size_t cap) {
    if (!im || !im->comps) return snprintf(why, cap, "no image"), 1;
    const uint64_t w = im->x1 > im->x0 ? (uint64_t)im->x1 - im->x0 : 0;
    const uint64_t h = im->y1 > im->y0 ? (uint64_t)im->y1 - im->y0 : 0;
    if (w != (uint64_t)f->cols || h != (uint64_t)f->rows || im->numcomps != (OPJ_UINT32)f->spp)
        return snprintf(why, cap, "is %llu x %llu with %u component(s)", (unsigned long long)w,
                        (unsigned long long)h, im->numcomps), 1;
    for (OPJ_UINT32 c = 0; c < im->numcomps; c++) {
        const opj_image_comp_t *k = &im->comps[c];
        if (k->dx != 1 || k->dy != 1)
            return snprintf(why, cap, "component %u is subsampled (%u x %u)", c + 1, k->dx, k->dy), 1;
        if (k->w != (OPJ_UINT32)f->cols || k->h != (OPJ_UINT32)f->rows || k->factor != 0)
            return snprintf(why, cap, "component %u is %u x %u", c + 1, k->w, k->h), 1;
        if (k->prec < 1 || k->prec > (OPJ_UINT32)f->bits_alloc)
            return snprintf(why, cap, "component %u has %u bits", c + 1, k->prec), 1;
        if (k->prec != im->comps[0].prec || k->sgnd != im->comps[0].sgnd)
            return snprintf(why, cap, "component %u has %u bits%s, component 1 %u bits%s", c + 1, k->prec,
                            k->sgnd ? " signed" : "", im->comps[0].prec, im->comps[0].sgnd ? " signed" : ""), 1;
        if (decoded && !k->data) return snprintf(why, cap, "component %u was not decoded", c + 1), 1;
    }
    return 0;
}

/* The image OpenJPEG read (decoded 0) or decoded (1) as frame `frame` against the header. */
static aac_status check_image(const opj_image_t *im, const dcm_file *f, int frame, int decoded, aac_error *err) {
    char why[200];
    if (!image_problem(im, f, decoded, why, sizeof why)) return AAC_OK;
    return aac_fail(err, AAC_ERR_FORMAT,
                    "%s: %sJPEG 2000 codestream %d %s, but the header says %d x %d, %d sample(s) per pixel, "
                    "%d bits allocated", f->path, decoded ? "decoded " : "", frame, why, f->cols, f->rows, f->spp,
                    f->bits_alloc);
}

/* ---- one frame */
/* Decodes the codestream (raw, or a JP2 file) p[0..n) of frame `frame` (1-based) into out
 * (rows * cols * spp stored values, interleaved), through raw (rows * cols * spp * bytes). */
static aac_status decode_frame(const dcm_file *f, int frame, const uint8_t *p, size_t n, uint8_t *raw,
                               int32_t *out, aac_error *err) {
    /* DICOM pads a fragment to even length; some writers leave more (0x00, 0xFF) after the EOC
     * marker, which OpenJPEG reads as a broken marker. What ends without an EOC is cut short. */
    while (n > 2 && (p[n - 1] == 0x00 || p[n - 1] == 0xFF) && !(p[n - 2] == 0xFF && p[n - 1] == 0xD9)) n--;
    if (n < 2 || p[n - 2] != 0xFF || p[n - 1] != 0xD9)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 codestream %d is truncated (no end-of-codestream marker)",
                        f->path, frame);
    const int jp2 = !(p[0] == 0xFF && p[1] == 0x4F);
    mem_stream mem = {p, n, 0};
    opj_messages msg = {{0}, {0}};
    opj_codec_t *codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    opj_stream_t *stream = opj_stream_create(n < OPJ_J2K_STREAM_CHUNK_SIZE ? n : OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
    opj_image_t *im = NULL;
    aac_status st = AAC_OK;
    if (!codec || !stream) {
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
        goto done;
    }
    opj_set_error_handler(codec, on_error, &msg);
    opj_set_warning_handler(codec, on_warning, &msg);
    opj_set_info_handler(codec, on_info, &msg);
    opj_stream_set_user_data(stream, &mem, NULL);
    opj_stream_set_user_data_length(stream, n);
    opj_stream_set_read_function(stream, mem_read);
    opj_stream_set_skip_function(stream, mem_skip);
    opj_stream_set_seek_function(stream, mem_seek);
    opj_dparameters_t param;
    opj_set_default_decoder_parameters(&param);
    if (!opj_setup_decoder(codec, &param) || !opj_decoder_set_strict_mode(codec, OPJ_TRUE)) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 decoder setup failed (%s)", f->path, opj_said(&msg));
        goto done;
    }
    if (!opj_read_header(stream, codec, &im) || !im) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 codestream %d: OpenJPEG cannot read its header (%s)",
                      f->path, frame, opj_said(&msg));
        goto done;
    }
    if ((st = check_image(im, f, frame, 0, err)) != AAC_OK) goto done;
    if (!opj_decode(codec, stream, im) || !opj_end_decompress(codec, stream)) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 codestream %d cannot be decoded (OpenJPEG: %s)", f->path,
                      frame, opj_said(&msg));
        goto done;
    }
    if ((st = check_image(im, f, frame, 1, err)) != AAC_OK) goto done;
    /* The samples as a decoder hands them over (little endian, Bits Allocated wide, colour
     * interleaved), then BitsStored / HighBit / sign as the DICOM header says (samples.c). */
    const size_t px = (size_t)f->rows * f->cols, spp = (size_t)f->spp, bytes = (size_t)f->bits_alloc / 8;
    for (size_t c = 0; c < spp; c++) {
        const OPJ_INT32 *d = im->comps[c].data;
        uint8_t *o = raw + c * bytes;
        for (size_t i = 0; i < px; i++, o += spp * bytes) {
            const uint32_t v = (uint32_t)d[i];
            for (size_t b = 0; b < bytes; b++) o[b] = (uint8_t)(v >> (8 * b));
        }
    }
    if (samples_unpack(raw, px * spp, f, 0, 1, out)) st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
done:
    if (im) opj_image_destroy(im);
    if (stream) opj_stream_destroy(stream);
    if (codec) opj_destroy_codec(codec);
    return st;
}

/* ---- the frames */
/* A 50-byte header with 1 x 1 tiles would have OpenJPEG allocate per-tile state for up to
 * 65535 tiles; a 4096 x 4096 image in 64 x 64 tiles has 4096. */
enum { J2K_MAX_TILES = 4096 };

/* Index of the first fragment of each frame into start[0..n_frames] (start[n_frames] = n_frags).
 * PS3.5 A.4: a frame may span fragments, a fragment never holds two frames. So one frame takes
 * every fragment, and as many fragments as frames are one each; only otherwise is a frame's
 * start found by its content (a fragment that starts a codestream or JP2 file), where a later
 * fragment's compressed data may happen to begin with the same two bytes: there, one that does
 * not parse as an image header continues the frame before. Returns how many frames were found
 * (n_frames when they fit; start is then filled). start has room for n_frames + 1. */
static int frame_starts(const j2k_fragment *frags, int n_frags, int n_frames, int *start) {
    if (n_frags >= 1 && (n_frames == 1 || n_frags == n_frames)) {
        for (int i = 0; i < n_frames; i++) start[i] = n_frames == 1 ? 0 : i;
        start[n_frames] = n_frags;
        return n_frames;
    }
    int frames = 0;
    for (int i = 0; i < n_frags; i++) {
        j2k_info info;
        if (i > 0 && j2k_read_info(frags[i].data, frags[i].len, &info) != 0) continue;
        if (frames < n_frames) start[frames] = i;
        frames++;
    }
    if (frames == n_frames) start[frames] = n_frags;
    return frames;
}

aac_status j2k_decode_frames(const dcm_file *f, const j2k_fragment *frags, int n_frags, int32_t *out,
                             aac_error *err) {
    int *start = malloc(sizeof(int) * ((size_t)f->n_frames + 1));
    if (!start) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
    const int found = frame_starts(frags, n_frags, f->n_frames, start);
    if (found != f->n_frames) {
        free(start);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 pixel data holds %d codestream(s) for %d frame(s)",
                        f->path, found, f->n_frames);
    }
    /* Every frame's SIZ against the header before anything is decoded. */
    for (int fr = 0; fr < f->n_frames; fr++) {
        const j2k_fragment *first = &frags[start[fr]];
        j2k_info info;
        const int r = j2k_read_info(first->data, first->len, &info);
        aac_status st = AAC_OK;
        if (r == -1)
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 pixel data: fragment %d does not start a codestream",
                          f->path, start[fr] + 1);
        else if (r != 0)
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 codestream %d: malformed or truncated image header",
                          f->path, fr + 1);
        else if (info.tiles > J2K_MAX_TILES)
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: JPEG 2000 codestream %d is cut into %llu tiles; more than %d are refused (the "
                          "decoder sets up every tile from the header alone)",
                          f->path, fr + 1, (unsigned long long)info.tiles, J2K_MAX_TILES);
        else if (info.width != (uint32_t)f->cols || info.height != (uint32_t)f->rows || info.components != f->spp ||
                 info.max_depth > f->bits_alloc || info.subsampled)
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: JPEG 2000 codestream %d is %u x %u, %d component(s) of up to %d bits%s, but the "
                          "header says %d x %d, %d sample(s) per pixel, %d bits allocated",
                          f->path, fr + 1, info.width, info.height, info.components, info.max_depth,
                          info.subsampled ? " (subsampled)" : "", f->cols, f->rows, f->spp, f->bits_alloc);
        if (st) {
            free(start);
            return st;
        }
    }
    const size_t per_frame = (size_t)f->rows * f->cols * f->spp;
    uint8_t *raw = malloc(per_frame * (size_t)(f->bits_alloc / 8));
    uint8_t *joined = NULL; /* a frame of several fragments, put together */
    size_t joined_cap = 0;
    aac_status st = raw ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
    for (int frame = 0; st == AAC_OK && frame < f->n_frames; frame++) {
        const int i = start[frame], j = start[frame + 1];
        size_t len = 0;
        for (int k = i; k < j; k++) len += frags[k].len;
        const uint8_t *p = frags[i].data;
        if (j > i + 1) {
            if (len > joined_cap) {
                free(joined);
                joined_cap = len;
                if (!(joined = malloc(len))) {
                    st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
                    break;
                }
            }
            size_t at = 0;
            for (int k = i; k < j; k++) {
                memcpy(joined + at, frags[k].data, frags[k].len);
                at += frags[k].len;
            }
            p = joined;
        }
        st = decode_frame(f, frame + 1, p, len, raw, out + (size_t)frame * per_frame, err);
    }
    free(joined);
    free(raw);
    free(start);
    return st;
}
