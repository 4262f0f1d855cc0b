/* test_torch_archive.c - PyTorch checkpoints of the golden set (../shared/golden/tiny, else the
 * reduced copy in the repository, whose archives differ only in zeroed embedding rows, edited in
 * place in both the .pt files and the safetensors) read without Python:
 * the torch.save state dict must equal clip_openclip.safetensors bit for bit, the TorchScript
 * fp16 archive must give the same names with F16 values equal to the f32 ones rounded to half,
 * and AA-CLIP's adapter checkpoints must match aaclip_adapters.safetensors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "torch_archive.h"

/* logit_scale is 0-dim in PyTorch (nn.Parameter(torch.ones([]))) but [1] in the safetensors
 * reference: a 0-dim tensor and a [1] tensor count as the same shape here. */
static int same_shape(const ta_tensor *t, const st_tensor *s) {
    if (t->numel != s->numel) return 0;
    if ((t->ndim == 0 && s->ndim == 1 && s->shape[0] == 1) ||
        (s->ndim == 0 && t->ndim == 1 && t->shape[0] == 1))
        return 1;
    if (t->ndim != s->ndim) return 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != s->shape[i]) return 0;
    return 1;
}

/* Self-contained: failures on a missing path, before anything that may skip. */
static void test_missing(void) {
    ta_archive *a = NULL;
    aac_error err = {0};
    const char *p = "/nonexistent/aaclip/model.pt";
    CHECK(ta_open(p, NULL, &a, &err) == AAC_ERR_IO && a == NULL && strstr(err.message, p),
          "missing file: %s", err.message);
}

/* (1) torch.save of the open_clip state dict == the safetensors file, bit for bit. */
static void test_state_dict(void) {
    const char *pt = tu_golden("clip_openclip_state_dict.pt");
    const char *sf = tu_golden("clip_openclip.safetensors");
    ta_archive *a;
    st_file *s;
    aac_error err = {0};
    CHECK_OK(ta_open(pt, NULL, &a, &err), &err);
    CHECK_OK(st_open(sf, &s, &err), &err);
    CHECK(strcmp(ta_kind(a), "torch.save") == 0, "kind %s", ta_kind(a));
    CHECK(ta_count(a) == st_count(s), "%zu tensors in the .pt, %zu in the safetensors",
          ta_count(a), st_count(s));
    size_t bad = 0;
    for (size_t i = 0; i < st_count(s); i++) {
        const st_tensor *r = st_at(s, i);
        const ta_tensor *t = ta_find(a, r->name);
        if (!t) {
            CHECK(0, "%s missing from the .pt", r->name);
            bad++;
            continue;
        }
        if (t->dtype != r->dtype || !same_shape(t, r) || t->nbytes != r->nbytes ||
            memcmp(t->data, r->data, r->nbytes) != 0) {
            if (bad++ < 5) CHECK(0, "%s differs (dtype, shape or bytes)", r->name);
        }
    }
    CHECK(bad == 0, "%zu tensors differ", bad);
    st_close(s);
    ta_close(a);
}

/* (2) TorchScript archive with HalfStorage: the module attributes flatten to the open_clip
 * names; values are the f32 reference rounded to half. It also carries CLIP's attn_mask
 * buffer, which open_clip's state dict leaves out (non-persistent). */
static void test_torchscript(void) {
    const char *pt = tu_golden("clip_torchscript_fp16.pt");
    const char *sf = tu_golden("clip_openclip.safetensors");
    ta_archive *a;
    st_file *s;
    aac_error err = {0};
    CHECK_OK(ta_open(pt, NULL, &a, &err), &err);
    CHECK_OK(st_open(sf, &s, &err), &err);
    CHECK(strcmp(ta_kind(a), "torchscript") == 0, "kind %s", ta_kind(a));
    size_t bad = 0, extra = 0;
    for (size_t i = 0; i < st_count(s); i++) {
        const st_tensor *r = st_at(s, i);
        const ta_tensor *t = ta_find(a, r->name);
        if (!t) {
            if (bad++ < 5) CHECK(0, "%s missing from the TorchScript archive", r->name);
            continue;
        }
        if (t->dtype != ST_F16 || !same_shape(t, r) || r->dtype != ST_F32) {
            if (bad++ < 5) CHECK(0, "%s: dtype %s or shape differs", r->name, st_dtype_name(t->dtype));
            continue;
        }
        const uint8_t *h = t->data, *f = r->data;
        for (int64_t k = 0; k < t->numel; k++) {
            uint16_t hv = (uint16_t)(h[2 * k] | h[2 * k + 1] << 8);
            uint32_t fb = (uint32_t)f[4 * k] | (uint32_t)f[4 * k + 1] << 8 |
                          (uint32_t)f[4 * k + 2] << 16 | (uint32_t)f[4 * k + 3] << 24;
            float ref, got = st_half_to_float(hv);
            memcpy(&ref, &fb, 4);
            if (!(fabsf(got - ref) <= 0x1p-11f * fabsf(ref) + 6e-8f)) {
                if (bad++ < 5) CHECK(0, "%s[%lld]: half %g vs float %g", r->name, (long long)k,
                                     got, ref);
                break;
            }
        }
    }
    for (size_t i = 0; i < ta_count(a); i++) {
        const ta_tensor *t = ta_at(a, i);
        if (st_find(s, t->name)) continue;
        extra++;
        CHECK(strcmp(t->name, "attn_mask") == 0, "unexpected TorchScript tensor %s", t->name);
        if (getenv("AAC_TEST_VERBOSE")) printf("TorchScript-only tensor: %s\n", t->name);
    }
    CHECK(bad == 0, "%zu TorchScript tensors differ", bad);
    CHECK(extra == 1 && ta_count(a) == st_count(s) + 1, "%zu tensors, %zu extra", ta_count(a), extra);
    const ta_tensor *m = ta_find(a, "attn_mask");
    CHECK(m && m->ndim == 2 && m->shape[0] == 77 && m->shape[1] == 77, "attn_mask shape");
    if (m) {
        /* Causal mask: 0 on and below the diagonal, -inf above. */
        const uint8_t *h = m->data;
        uint16_t d = (uint16_t)(h[0] | h[1] << 8), up = (uint16_t)(h[2] | h[3] << 8);
        CHECK(d == 0 && up == 0xfc00, "attn_mask values %04x %04x", d, up);
    }
    CHECK(ta_scalar(a, "training") == NULL, "training kept");
    if (getenv("AAC_TEST_VERBOSE"))
        for (size_t i = 0; i < ta_count(a); i++) printf("ts %s\n", ta_at(a, i)->name);
    st_close(s);
    ta_close(a);
}

/* (3) AA-CLIP adapter checkpoints: {"epoch", "<x>_adapter": state dict, "<x>_optimizer"}. */
static void test_adapter(const char *rel, const char *prefix, const char *epoch) {
    const char *pt = tu_golden(rel);
    const char *sf = tu_golden("aaclip_adapters.safetensors");
    ta_archive *a;
    st_file *s;
    aac_error err = {0};
    CHECK_OK(ta_open(pt, NULL, &a, &err), &err);
    CHECK_OK(st_open(sf, &s, &err), &err);
    size_t plen = strlen(prefix), matched = 0, in_ref = 0;
    for (size_t i = 0; i < st_count(s); i++) {
        const st_tensor *r = st_at(s, i);
        if (strncmp(r->name, prefix, plen) != 0 || r->name[plen] != '.') continue;
        in_ref++;
        const ta_tensor *t = ta_find(a, r->name);
        CHECK(t != NULL, "%s: %s missing", rel, r->name);
        if (!t) continue;
        CHECK(t->dtype == r->dtype && same_shape(t, r) && t->nbytes == r->nbytes &&
              memcmp(t->data, r->data, r->nbytes) == 0, "%s: %s differs", rel, r->name);
        matched++;
    }
    size_t in_pth = 0;
    for (size_t i = 0; i < ta_count(a); i++)
        if (strncmp(ta_at(a, i)->name, prefix, plen) == 0 && ta_at(a, i)->name[plen] == '.') in_pth++;
    CHECK(in_ref > 0 && matched == in_ref && in_pth == in_ref,
          "%s: %zu %s.* tensors in the reference, %zu matched, %zu in the .pth", rel, in_ref,
          prefix, matched, in_pth);
    const char *e = ta_scalar(a, "epoch");
    CHECK(e && strcmp(e, epoch) == 0, "%s: epoch = %s", rel, e ? e : "(absent)");
    /* The optimizer entry: these checkpoints were saved before any step, so its "state" is
     * empty and only the param_groups scalars exist; no tensor may hide under another name. */
    char key[128];
    const char *opt = strcmp(prefix, "text_adapter") == 0 ? "text_optimizer" : "image_optimizer";
    snprintf(key, sizeof key, "%s.param_groups.0.lr", opt);
    const char *lr = ta_scalar(a, key);
    CHECK(lr && atof(lr) > 0, "%s: %s = %s", rel, key, lr ? lr : "(absent)");
    snprintf(key, sizeof key, "%s.param_groups.0.betas.1", opt);
    CHECK(ta_scalar(a, key) && strcmp(ta_scalar(a, key), "0.999") == 0, "%s: %s", rel, key);
    size_t opt_tensors = 0;
    for (size_t i = 0; i < ta_count(a); i++)
        if (strncmp(ta_at(a, i)->name, opt, strlen(opt)) == 0) opt_tensors++;
    CHECK(ta_count(a) == in_pth + opt_tensors, "%s: tensors outside %s.* and %s.*", rel, prefix, opt);
    if (getenv("AAC_TEST_VERBOSE"))
        printf("%s: %zu adapter tensors, %zu optimizer tensors, epoch %s, lr %s\n", rel, in_pth,
               opt_tensors, e ? e : "-", lr ? lr : "-");
    st_close(s);
    ta_close(a);
}

int main(void) {
    test_missing();
    test_state_dict();
    test_torchscript();
    test_adapter("text_adapter.pth", "text_adapter", "5");
    test_adapter("image_adapter_15.pth", "image_adapter", "15");
    return tu_finish("test_torch_archive");
}
