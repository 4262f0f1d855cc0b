/* anchor_cache.h - text anchors cached on disk per model and class description. */
#ifndef AAC_ANCHOR_CACHE_H
#define AAC_ANCHOR_CACHE_H
#include "aaclip.h"

/* T [E x 2] for `description`: read from the cache when an entry for this model (identified
 * by its weight files' paths, sizes and modification times) and description exists, else
 * computed with aac_text_anchors and stored. The cache lives in $AACLIP_CACHE_DIR, else
 * $XDG_CACHE_HOME/aaclip, else ~/.cache/aaclip; when it cannot be used, anchors are just
 * computed. *from_cache tells which happened (may be NULL). */
aac_status anchors_cached(aac_model *m, const aac_tokenizer *tok, const char *const *model_files,
                          int n_files, const char *description, float *T, int *from_cache,
                          aac_error *err);
#endif
