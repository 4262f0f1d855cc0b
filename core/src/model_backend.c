/* model_backend.c - the model's compute backend: choosing it (by name, or `auto` by timing
 * the model's own dominant product on each candidate) and preparing the frozen vision weights
 * for it once. Text-tower weights are not prepared: the text tower runs on prompts of varying
 * length, a few times per class. Adapters and projections are not prepared either: training
 * changes them. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "kernels.h"
#include "model.h"
#include "safetensors.h"

/* Below this many flops in the MLP product of one vision block, backends differ by less than
 * the noise of a timing and the built-in reference is kept without looking. */
#define AUTO_MIN_FLOPS 5e8
/* A candidate is taken over a more exact or more preferred one only when faster by this: more
 * than the spread of the turns' best-of-three timings, less than what a slice loses by it. */
#define AUTO_MARGIN 1.05

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The prepared-weight slots of the model (vision blocks and the patch embedding), with the
 * precision of each product. At bf16 the q/k/v projection and the patch embedding stay
 * float32: the attention logits amplify the rounding of q and k (measured on the golden model:
 * bf16 there alone moves the maps by 0.95 %, the out-projection and the MLP together by 0.4 %),
 * and the patch embedding sees the image itself for 0.2 % of the work. */
typedef struct prep_slot {
    void **handle;
    const float *w;
    int n, k, m_rows;
    aac_precision precision;
} prep_slot;

static int prep_slots(aac_model *m, aac_precision lo, prep_slot *s, int cap) {
    const aac_config *c = &m->cfg;
    const int W = c->v_width, G = m->grid, Np = G * G, N = Np + 1, P3 = 3 * c->patch * c->patch;
    int n = 0;
    const aac_precision f32 = AAC_PRECISION_F32;
    if (n < cap) s[n++] = (prep_slot){&m->conv1_p, m->conv1_w, W, P3, Np, f32};
    for (int i = 0; i < c->v_layers; i++) {
        block_weights *b = &m->vblocks[i];
        if (n + 4 > cap) break;
        s[n++] = (prep_slot){&b->in_p, b->in_w, 3 * W, W, N, f32};
        s[n++] = (prep_slot){&b->out_p, b->out_w, W, W, N, lo};
        s[n++] = (prep_slot){&b->fc_p, b->fc_w, 4 * W, W, N, lo};
        s[n++] = (prep_slot){&b->pj_p, b->pj_w, W, 4 * W, N, lo};
    }
    return n;
}

static void release_slots(aac_compute *cx, void **handles, int n) {
    for (int i = 0; i < n; i++)
        if (handles[i]) cx->be->release_weight(cx->state, handles[i]);
}

void model_release_backend(aac_model *m) {
    if (!m->cx) return;
    const int cap = 1 + 4 * m->cfg.v_layers;
    prep_slot *s = malloc(sizeof *s * cap);
    const int n = s && m->vblocks ? prep_slots(m, m->cx->precision, s, cap) : 0;
    for (int i = 0; i < n; i++) {
        if (*s[i].handle) m->cx->be->release_weight(m->cx->state, *s[i].handle);
        *s[i].handle = NULL;
    }
    free(s);
    aac_compute_free(m->cx);
    m->cx = NULL;
}

/* Prepares every slot for cx into handles[] (NULL where the backend declines). A weight read
 * through its copy gives its pages in the weight file f back at once, so that the originals
 * and the copies are never resident together (touched again, by training or another
 * backend, they come back from the file). */
static aac_status prepare_all(aac_compute *cx, const prep_slot *s, int n, void **handles,
                              const st_file *f, aac_error *err) {
    memset(handles, 0, sizeof *handles * n);
    if (!cx->be->prepare_weight) return AAC_OK;
    for (int i = 0; i < n; i++) {
        aac_error e = {0};
        const aac_precision pr = s[i].precision < cx->precision ? s[i].precision : cx->precision;
        aac_status st = cx->be->prepare_weight(cx->state, s[i].w, s[i].n, s[i].k, s[i].m_rows, pr,
                                               &handles[i], &e);
        if (st) {
            release_slots(cx, handles, i);
            memset(handles, 0, sizeof *handles * n);
            return aac_fail(err, st, "backend '%s': preparing a %d x %d weight: %s", cx->be->name,
                            s[i].n, s[i].k, e.message);
        }
        if (handles[i]) st_release_pages(f, s[i].w, sizeof(float) * s[i].n * s[i].k);
    }
    return AAC_OK;
}

typedef struct candidate {
    const char *name;
    aac_precision prec;
    aac_compute *cx;
    void *h;       /* its prepared copy of the timed weight */
    double t;      /* best seconds, < 0: failed */
    aac_error err;
} candidate;

/* Times the vision MLP product (N x 4W x W, the model's most frequent large shape) on every
 * candidate, in turns (a warm-up round, then three rounds, best of each), so that a change in
 * the machine's load hits them alike. */
static void time_candidates(aac_model *m, candidate *cand, int nc) {
    const aac_config *c = &m->cfg;
    const int W = c->v_width, N = m->grid * m->grid + 1;
    const block_weights *b = &m->vblocks[0];
    float *A = m->ws.h, *C = m->ws.big;
    for (size_t i = 0; i < (size_t)N * W; i++) A[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;
    for (int i = 0; i < nc; i++) {
        candidate *k = &cand[i];
        k->t = -1;
        if (k->cx && k->cx->be->prepare_weight &&
            k->cx->be->prepare_weight(k->cx->state, b->fc_w, 4 * W, W, N, k->prec, &k->h, &k->err)) {
            aac_compute_free(k->cx);
            k->cx = NULL;
        }
        if (k->cx) k->t = 1e30;
    }
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < nc; i++) {
            candidate *k = &cand[i];
            if (!k->cx) continue;
            const double t0 = now();
            linear(k->cx, b->fc_w, k->h, 4 * W, W, N, 1.0f, A, W, 0.0f, C, 4 * W);
            const double t = now() - t0;
            if (compute_take_error(k->cx, &k->err)) k->t = -1;
            else if (r > 0 && k->t > 0 && t < k->t) k->t = t;
        }
    for (int i = 0; i < nc; i++) {
        candidate *k = &cand[i];
        if (k->h) k->cx->be->release_weight(k->cx->state, k->h);
        aac_compute_free(k->cx);
        k->cx = NULL, k->h = NULL;
    }
}

static aac_status choose_auto(aac_model *m, const aac_plugins *p, aac_precision precision,
                              aac_compute **out, char *note, size_t note_cap, aac_error *err) {
    /* candidates in order of preference: the reference, other f32 backends, bf16 ones (only
     * when bf16 was asked for: f32 is exact enough for it, not the other way round) */
    candidate cand[32];
    int nc = 0;
    memset(cand, 0, sizeof cand);
    for (int pass = 0; pass < 2; pass++) {
        const aac_precision pr = pass ? AAC_PRECISION_BF16 : AAC_PRECISION_F32;
        if (pr == AAC_PRECISION_BF16 && precision != AAC_PRECISION_BF16) break;
        aac_backend_desc d;
        for (int i = 0; aac_plugins_get(p, i, &d) && nc < 32; i++) {
            if (d.refused || !d.name) continue;
            if (!(d.caps & (pr == AAC_PRECISION_BF16 ? AAC_BACKEND_CAP_BF16 : AAC_BACKEND_CAP_F32))) continue;
            candidate *k = &cand[nc++];
            k->name = d.name, k->prec = pr;
            if (aac_compute_open(p, d.name, pr, 0, &k->cx, &k->err)) k->cx = NULL;
        }
    }
    time_candidates(m, cand, nc);
    const aac_config *c = &m->cfg;
    size_t n = (size_t)snprintf(note, note_cap, "auto, %d x %d x %d product:", m->grid * m->grid + 1,
                                4 * c->v_width, c->v_width);
    double fastest = 1e30;
    for (int i = 0; i < nc; i++) {
        if (n < note_cap) {
            if (cand[i].t > 0)
                n += (size_t)snprintf(note + n, note_cap - n, " %s %s %.1f ms;", cand[i].name,
                                      aac_precision_name(cand[i].prec), 1e3 * cand[i].t);
            else
                n += (size_t)snprintf(note + n, note_cap - n, " %s %s failed (%s);", cand[i].name,
                                      aac_precision_name(cand[i].prec), cand[i].err.message);
        }
        if (cand[i].t > 0 && cand[i].t < fastest) fastest = cand[i].t;
    }
    int pick = -1;
    for (int i = 0; i < nc && pick < 0; i++)
        if (cand[i].t > 0 && cand[i].t <= AUTO_MARGIN * fastest) pick = i;
    if (pick < 0) return aac_fail(err, AAC_ERR_UNSUPPORTED, "no backend could run the model (%s)", note);
    if (n && n <= note_cap) note[n - 1] = '\0'; /* the last ';' */
    return aac_compute_open(p, cand[pick].name, cand[pick].prec, 0, out, err);
}

aac_status aac_model_set_backend(aac_model *m, const aac_plugins *p, const char *name,
                                 aac_precision precision, aac_error *err) {
    if (!m) return aac_fail(err, AAC_ERR_ARG, "aac_model_set_backend: NULL model");
    if (precision != AAC_PRECISION_F32 && precision != AAC_PRECISION_BF16)
        return aac_fail(err, AAC_ERR_ARG, "unknown precision %d", (int)precision);
    const int is_auto = !name || !strcmp(name, "auto");
    const aac_config *c = &m->cfg;
    const int W = c->v_width, N = m->grid * m->grid + 1;
    const int small = 2.0 * N * 4.0 * W * W < AUTO_MIN_FLOPS;
    aac_plugins *own = NULL;
    aac_compute *cx = NULL;
    char note[512] = "";
    aac_status s = AAC_OK;
    if (is_auto && small) {
        s = aac_compute_open(NULL, AAC_BACKEND_BUILTIN, AAC_PRECISION_F32, 0, &cx, err);
        snprintf(note, sizeof note, "auto: the built-in backend for a model this small");
    } else {
        if (!p && (is_auto || strcmp(name, AAC_BACKEND_BUILTIN))) {
            if ((s = aac_plugins_open(NULL, &own, err))) return s;
            p = own;
        }
        if (is_auto)
            s = choose_auto(m, p, precision, &cx, note, sizeof note, err);
        else
            s = aac_compute_open(p, name, precision, 0, &cx, err);
    }
    aac_plugins_free(own); /* plugins stay mapped (RTLD_NODELETE) */
    if (s) return s;

    /* prepare for the new backend before giving up the old one */
    const int cap = 1 + 4 * c->v_layers;
    prep_slot *slots = malloc(sizeof *slots * cap);
    void **handles = malloc(sizeof *handles * cap);
    if (!slots || !handles) {
        free(slots), free(handles);
        aac_compute_free(cx);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    const int ns = prep_slots(m, cx->precision, slots, cap);
    if ((s = prepare_all(cx, slots, ns, handles, m->clip_file, err))) {
        free(slots), free(handles);
        aac_compute_free(cx);
        return s;
    }
    model_release_backend(m);
    for (int i = 0; i < ns; i++) *slots[i].handle = handles[i];
    free(slots), free(handles);
    m->cx = cx;
    snprintf(m->backend_line, sizeof m->backend_line, "%s%s%s%s", cx->describe,
             cx->precision == AAC_PRECISION_BF16 ? " (bf16: vision out-projection and MLP; the rest f32)" : "",
             note[0] ? "; " : "", note);
    return AAC_OK;
}

const char *aac_model_backend(const aac_model *m) { return m ? m->backend_line : ""; }
const char *aac_model_backend_name(const aac_model *m) { return m && m->cx ? m->cx->be->name : ""; }
aac_precision aac_model_precision(const aac_model *m) { return m && m->cx ? m->cx->precision : AAC_PRECISION_F32; }
