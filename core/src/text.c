/* text.c - the CLIP text tower, AA-CLIP text adapters and the anomaly-aware anchors. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "model.h"

aac_status aac_encode_text(aac_model *m, const int32_t ids[AAC_CONTEXT_LENGTH], int adapted,
                           float *out, aac_error *err) {
    if (!m || !ids || !out) return aac_fail(err, AAC_ERR_ARG, "aac_encode_text: NULL argument");
    if (adapted && !m->has_adapters)
        return aac_fail(err, AAC_ERR_ARG, "the model has no AA-CLIP adapters loaded");
    const aac_config *c = &m->cfg;
    const int Wt = c->t_width, E = c->embed_dim;
    /* The pooled row is the end-of-text token (largest id). With the causal mask no row
     * depends on later ones, so the tokens after it are never computed. */
    int eot = 0;
    for (int i = 0; i < c->context; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab)
            return aac_fail(err, AAC_ERR_ARG, "token id %d at position %d is outside the vocabulary",
                            (int)ids[i], i);
        if (ids[i] > ids[eot]) eot = i;
    }
    const int n = eot + 1;
    workspace *ws = &m->ws;
    compute_take_error(m->cx, NULL);
    float *x = ws->x;
    for (int i = 0; i < n; i++) {
        const float *te = m->tok_emb + (size_t)ids[i] * Wt, *pe = m->t_pos + (size_t)i * Wt;
        for (int j = 0; j < Wt; j++) x[(size_t)i * Wt + j] = te[j] + pe[j];
    }
    for (int i = 0; i < c->t_layers; i++) {
        block_forward(m, &m->tblocks[i], x, n, Wt, c->t_heads, 1, ws);
        if (adapted && i < c->text_adapt_until)
            adapter_mix(m->cx, x, n, Wt, m->t_adapt[i], c->text_adapt_weight, ws->tmp);
    }
    float *e = ws->h;
    layernorm(x + (size_t)eot * Wt, e, m->ln_final_w, m->ln_final_b, 1, Wt, Wt, Wt);
    if (adapted) {
        gemm_nt(m->cx, 1, E, Wt, 1.0f, e, Wt, m->t_anchor_proj, Wt, 0.0f, out, E);
        leaky_relu(out, (size_t)E, 0.01f); /* the anchor projection always has the LeakyReLU */
    } else {
        gemm_nn(m->cx, 1, E, Wt, 1.0f, e, Wt, m->text_proj, E, 0.0f, out, E);
    }
    return compute_take_error(m->cx, err);
}

/* The prompt ensemble of AA-CLIP: states x templates. */
static const char *const k_normal_states[] = {"{}", "a {}", "the {}"};
static const char *const k_abnormal_states[] = {"a damaged {}", "a broken {}", "a {} with flaw",
                                                "a {} with defect", "a {} with damage"};
static const char *const k_templates[] = {"{}.", "a photo of {}."};

/* Replaces the single "{}" in fmt by arg. */
static int fill(char *dst, size_t cap, const char *fmt, const char *arg) {
    const char *p = strstr(fmt, "{}");
    int n = snprintf(dst, cap, "%.*s%s%s", (int)(p - fmt), fmt, arg, p + 2);
    return n >= 0 && (size_t)n < cap;
}

aac_status prompt_ids(const aac_tokenizer *tok, const char *description, int j,
                      int32_t ids[AAC_CONTEXT_LENGTH], aac_error *err) {
    if (j < 0 || j >= AAC_N_PROMPTS) return aac_fail(err, AAC_ERR_ARG, "prompt %d out of range", j);
    const int normal = j < AAC_N_NORMAL_PROMPTS, jj = normal ? j : j - AAC_N_NORMAL_PROMPTS;
    const char *state_fmt = normal ? k_normal_states[jj / 2] : k_abnormal_states[jj / 2];
    char state[1024], sentence[1200];
    if (!fill(state, sizeof state, state_fmt, description) ||
        !fill(sentence, sizeof sentence, k_templates[jj % 2], state))
        return aac_fail(err, AAC_ERR_ARG, "class description too long");
    return aac_tokenizer_encode(tok, sentence, ids, err);
}

aac_status aac_text_anchors(aac_model *m, const aac_tokenizer *tok, const char *description,
                            int adapted, float *T, aac_error *err) {
    if (!m || !tok || !description || !T)
        return aac_fail(err, AAC_ERR_ARG, "aac_text_anchors: NULL argument");
    const int E = m->cfg.embed_dim;
    float emb[4096], acc[4096];
    if (E > 4096) return aac_fail(err, AAC_ERR_UNSUPPORTED, "embedding size %d too large", E);
    for (int group = 0; group < 2; group++) {
        const int j0 = group ? AAC_N_NORMAL_PROMPTS : 0, j1 = group ? AAC_N_PROMPTS : AAC_N_NORMAL_PROMPTS;
        memset(acc, 0, sizeof(float) * E);
        for (int j = j0; j < j1; j++) {
            int32_t ids[AAC_CONTEXT_LENGTH];
            aac_status st = prompt_ids(tok, description, j, ids, err);
            if (st || (st = aac_encode_text(m, ids, adapted, emb, err))) return st;
            l2_normalize_rows(emb, 1, E);
            for (int e = 0; e < E; e++) acc[e] += emb[e];
        }
        for (int e = 0; e < E; e++) acc[e] /= (float)(j1 - j0);
        l2_normalize_rows(acc, 1, E);
        for (int e = 0; e < E; e++) T[e * 2 + group] = acc[e];
    }
    return AAC_OK;
}
