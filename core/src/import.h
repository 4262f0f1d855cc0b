/* import.h - reading published CLIP / AA-CLIP weights into the canonical layout (internal).
 *
 * imp_collect opens every source, detects what it is from its content, maps the tensor names
 * to the canonical ones (open_clip backbone, aaclip adapter names), converts them to float32,
 * checks every expected tensor and shape, settles the configuration (shapes, what the sources
 * state, the caller's overrides, documented defaults) and returns two safetensors writers
 * ready to save plus the tokenizer files and the provenance for model.json. */
#ifndef AAC_IMPORT_H
#define AAC_IMPORT_H
#include <jansson.h>

#include "aaclip.h"
#include "safetensors.h"

typedef struct imp_result {
    st_writer *clip;     /* canonical backbone + __metadata__ config/activation */
    st_writer *adapters; /* canonical adapters + metadata, NULL for plain CLIP */
    aac_config cfg;      /* as written to the metadata */
    /* tokenizer to copy into the bundle: a BPE merge list, or vocab.json + merges.txt */
    char *tok_bpe, *tok_vocab, *tok_merges;
    json_t *sources;     /* provenance: [{"path", "kind", "roles", "epoch"?}] */
    json_t *settled;     /* where each setting not read from tensor shapes came from */
} imp_result;

aac_status imp_collect(const char *const *sources, int n, const aac_import_params *p,
                       imp_result *r, aac_error *err);
void imp_result_free(imp_result *r);
#endif
