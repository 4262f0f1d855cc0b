/* cmd_dump.c - `aaclip dump`: every engine output for a batch of images, under the names of
 * the golden reference files, so anyone can compare the engine with another implementation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "safetensors.h"

static void dump_help(void) {
    printf("usage: aaclip dump (--model BUNDLE | --clip C.safetensors --adapters A.safetensors)\n"
           "                   --input IN.safetensors --output OUT.safetensors [--class-text TEXT]\n"
           "                   [--domain medical|industrial] [model options]\n"
           "\n"
           "Reads image.input [B,3,S,S] (normalised) or image.raw_u8 [B,H,W] (8-bit grey) from IN\n"
           "and writes image.input (when computed), pos_embed_resized, text.anchors [E,2],\n"
           "visual.seg_tokens.{0..L-1} [B,Np,E], visual.det_token [B,E],\n"
           "map.<Domain>.level{0..L-1} [B,1,S,S], map.<Domain>.sum [B,S,S], score.det [B],\n"
           "plain.cls_embed [B,E] to OUT (written atomically).\n"
           "\n"
           "  --class-text TEXT   class description inserted in the prompts (default \"scan\")\n"
           "  --domain D          medical (9x9 blur, sigma 1.5) or industrial (7x7, sigma 1);\n"
           "                      default medical\n"
           "\n");
    model_opts_help();
}

typedef struct dump_buffers {
    float *input, *seg[AAC_MAX_LEVELS], *det, *levels[AAC_MAX_LEVELS], *sum, *score, *cls;
} dump_buffers;

static void free_buffers(dump_buffers *b) {
    free(b->input), free(b->det), free(b->sum), free(b->score), free(b->cls);
    for (int k = 0; k < AAC_MAX_LEVELS; k++) free(b->seg[k]), free(b->levels[k]);
}

/* Finds the images in IN: float input, or 8-bit slices to preprocess. */
static int load_images(const st_file *in, int S, dump_buffers *b, int *B_out, int *computed,
                       aac_error *err) {
    const st_tensor *t = st_find(in, "image.input");
    if (t) {
        if (t->ndim != 4 || t->shape[1] != 3 || t->shape[2] != S || t->shape[3] != S) {
            fprintf(stderr, "aaclip: %s: image.input must be [B,3,%d,%d] for this model "
                            "(use --image-size to run at another size)\n", st_path(in), S, S);
            return -1;
        }
        *B_out = (int)t->shape[0];
        b->input = malloc(sizeof(float) * (size_t)t->numel);
        if (!b->input) return fprintf(stderr, "aaclip: out of memory\n"), -1;
        if (st_read_f32(in, "image.input", 0, NULL, b->input, err)) {
            fprintf(stderr, "aaclip: %s\n", err->message);
            return -1;
        }
        *computed = 0;
        return 0;
    }
    t = st_find(in, "image.raw_u8");
    if (!t) {
        fprintf(stderr, "aaclip: %s: neither image.input nor image.raw_u8 found\n", st_path(in));
        return -1;
    }
    if (t->dtype != ST_U8 || t->ndim != 3 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1) {
        fprintf(stderr, "aaclip: %s: image.raw_u8 must be U8 [B,H,W]\n", st_path(in));
        return -1;
    }
    const int B = (int)t->shape[0], H = (int)t->shape[1], W = (int)t->shape[2];
    b->input = malloc(sizeof(float) * (size_t)B * 3 * S * S);
    if (!b->input) return fprintf(stderr, "aaclip: out of memory\n"), -1;
    for (int i = 0; i < B; i++) {
        const uint8_t *px = (const uint8_t *)t->data + (size_t)i * H * W;
        if (aac_preprocess_grey(px, W, H, S, b->input + (size_t)i * 3 * S * S, err)) {
            fprintf(stderr, "aaclip: %s: image %d: %s\n", st_path(in), i, err->message);
            return -1;
        }
    }
    *B_out = B;
    *computed = 1;
    return 0;
}

static int add(st_writer *w, const char *name, st_dtype dt, int nd, const int64_t *shape,
               const void *data, aac_error *err) {
    if (st_writer_add(w, name, dt, nd, shape, data, err)) {
        fprintf(stderr, "aaclip: %s\n", err->message);
        return -1;
    }
    return 0;
}

int cmd_dump(int argc, char **argv) {
    model_opts mo = {.params = aac_model_default_params()};
    const char *in_path = NULL, *out_path = NULL, *class_text = "scan";
    aac_domain domain = AAC_DOMAIN_MEDICAL;
    for (int i = 1; i < argc; i++) {
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            dump_help();
            return 0;
        } else if (v && !strcmp(a, "--input")) in_path = argv[++i];
        else if (v && !strcmp(a, "--output")) out_path = argv[++i];
        else if (v && !strcmp(a, "--class-text")) class_text = argv[++i];
        else if (v && !strcmp(a, "--domain")) {
            i++;
            if (!strcmp(v, "medical")) domain = AAC_DOMAIN_MEDICAL;
            else if (!strcmp(v, "industrial")) domain = AAC_DOMAIN_INDUSTRIAL;
            else return fprintf(stderr, "aaclip: --domain expects medical or industrial\n"), 2;
        } else {
            fprintf(stderr, "aaclip dump: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!in_path || !out_path) {
        fprintf(stderr, "aaclip dump: --input and --output are required\n");
        return 2;
    }
    if (model_opts_check(&mo, "dump", 1)) return 2;
    set_threads(mo.params.n_threads);

    aac_error err = {0};
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    st_file *in = NULL;
    st_writer *w = NULL;
    dump_buffers b = {0};
    int rc = 1, B = 0, computed = 0;
    if (model_opts_open(&mo, &m, &tok)) goto done;
    if (!aac_model_has_adapters(m)) {
        fprintf(stderr, "aaclip: %s has no AA-CLIP adapters (dump runs the adapted model)\n", mo.bundle);
        goto done;
    }
    if (st_open(in_path, &in, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        goto done;
    }
    const aac_config *c = aac_model_config(m);
    const int S = c->img, E = c->embed_dim, G = aac_model_grid(m), Np = G * G, L = c->n_levels;
    if (load_images(in, S, &b, &B, &computed, &err)) goto done;

    float T[2 * 4096];
    if (E > 4096 || aac_text_anchors(m, tok, class_text, 1, T, &err)) {
        fprintf(stderr, "aaclip: anchors for \"%s\": %s\n", class_text, err.message);
        goto done;
    }
    const size_t SS = (size_t)S * S;
    for (int k = 0; k < L; k++) {
        b.seg[k] = malloc(sizeof(float) * (size_t)B * Np * E);
        b.levels[k] = malloc(sizeof(float) * (size_t)B * SS);
        if (!b.seg[k] || !b.levels[k]) goto nomem;
    }
    b.det = malloc(sizeof(float) * (size_t)B * E);
    b.cls = malloc(sizeof(float) * (size_t)B * E);
    b.sum = malloc(sizeof(float) * (size_t)B * SS);
    b.score = malloc(sizeof(float) * (size_t)B);
    if (!b.det || !b.cls || !b.sum || !b.score) goto nomem;

    for (int i = 0; i < B; i++) {
        const float *img = b.input + (size_t)i * 3 * SS;
        aac_vision_out v = {.det_token = b.det + (size_t)i * E};
        float *lv[AAC_MAX_LEVELS];
        for (int k = 0; k < L; k++) {
            v.seg_tokens[k] = b.seg[k] + (size_t)i * Np * E;
            lv[k] = b.levels[k] + (size_t)i * SS;
        }
        aac_vision_out plain = {.cls_embed = b.cls + (size_t)i * E};
        if (aac_encode_image(m, img, 1, &v, &err) ||
            aac_anomaly_maps(m, &v, T, domain, lv, b.sum + (size_t)i * SS, b.score + i, &err) ||
            aac_encode_image(m, img, 0, &plain, &err)) {
            fprintf(stderr, "aaclip: image %d: %s\n", i, err.message);
            goto done;
        }
    }

    const char *dom = domain == AAC_DOMAIN_MEDICAL ? "Medical" : "Industrial";
    const float *pe;
    aac_model_pos_embed(m, &pe, &err);
    if (!(w = st_writer_new())) goto nomem;
    char name[64];
    int64_t sh_in[4] = {B, 3, S, S}, sh_pe[2] = {Np + 1, c->v_width}, sh_T[2] = {E, 2};
    int64_t sh_seg[3] = {B, Np, E}, sh_be[2] = {B, E}, sh_lv[4] = {B, 1, S, S}, sh_sum[3] = {B, S, S};
    int64_t sh_b[1] = {B};
    if ((computed && add(w, "image.input", ST_F32, 4, sh_in, b.input, &err)) ||
        add(w, "pos_embed_resized", ST_F32, 2, sh_pe, pe, &err) ||
        add(w, "text.anchors", ST_F32, 2, sh_T, T, &err))
        goto done;
    for (int k = 0; k < L; k++) {
        snprintf(name, sizeof name, "visual.seg_tokens.%d", k);
        if (add(w, name, ST_F32, 3, sh_seg, b.seg[k], &err)) goto done;
    }
    if (add(w, "visual.det_token", ST_F32, 2, sh_be, b.det, &err)) goto done;
    for (int k = 0; k < L; k++) {
        snprintf(name, sizeof name, "map.%s.level%d", dom, k);
        if (add(w, name, ST_F32, 4, sh_lv, b.levels[k], &err)) goto done;
    }
    snprintf(name, sizeof name, "map.%s.sum", dom);
    if (add(w, name, ST_F32, 3, sh_sum, b.sum, &err) ||
        add(w, "score.det", ST_F32, 1, sh_b, b.score, &err) ||
        add(w, "plain.cls_embed", ST_F32, 2, sh_be, b.cls, &err))
        goto done;
    if (st_writer_set_metadata(w, "producer", "aaclip " AAC_VERSION_STRING, &err) ||
        st_writer_set_metadata(w, "class_text", class_text, &err) ||
        st_writer_set_metadata(w, "domain", dom, &err) || st_writer_save(w, out_path, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        goto done;
    }
    fprintf(stderr, "aaclip: wrote %d image(s) to %s\n", B, out_path);
    rc = 0;
    goto done;
nomem:
    fprintf(stderr, "aaclip: out of memory\n");
done:
    free_buffers(&b);
    st_writer_free(w);
    st_close(in);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return rc;
}
