/* anchor_cache.c - a small on-disk cache of text anchors. An entry is keyed by a 64-bit hash of
 * what determines the anchors (the model's weight files as path/size/mtime, the description,
 * the embedding size) and holds the key again, so a hash collision or a stale file is caught
 * on reading rather than returning another model's anchors. */
#define _XOPEN_SOURCE 700
#include "score_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

#define CACHE_MAGIC "AACANCH1"

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int cache_dir(char *out, size_t cap) {
    const char *d = getenv("AACLIP_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (d && *d) snprintf(out, cap, "%s", d);
    else if (x && *x) snprintf(out, cap, "%s/aaclip", x);
    else if (h && *h) snprintf(out, cap, "%s/.cache/aaclip", h);
    else return -1;
    return fs_mkdirs(out);
}

/* The key text: every weight file as realpath|size|mtime, then the description and E. */
static char *key_text(const char *const *files, int n, const char *description, int E) {
    size_t cap = 256 + strlen(description);
    for (int i = 0; i < n; i++) cap += 4200;
    char *k = malloc(cap);
    if (!k) return NULL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        char real[4096];
        if (!files[i] || stat(files[i], &st) || !realpath(files[i], real)) {
            free(k);
            return NULL;
        }
        len += (size_t)snprintf(k + len, cap - len, "%s|%lld|%lld.%09ld\n", real, (long long)st.st_size,
                                (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    }
    snprintf(k + len, cap - len, "E=%d\n%s", E, description);
    return k;
}

aac_status anchors_cached(aac_model *m, const aac_tokenizer *tok, const char *const *model_files,
                          int n_files, const char *description, float *T, int *from_cache,
                          aac_error *err) {
    const int E = aac_model_config(m)->embed_dim;
    if (from_cache) *from_cache = 0;
    char dir[4096], path[4400];
    char *key = cache_dir(dir, sizeof dir) ? NULL : key_text(model_files, n_files, description, E);
    if (key) {
        snprintf(path, sizeof path, "%s/anchors-%016llx.bin", dir,
                 (unsigned long long)fnv1a(0xcbf29ce484222325ull, key, strlen(key)));
        FILE *f = fopen(path, "rb");
        if (f) {
            char magic[8];
            uint32_t klen = 0;
            int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, CACHE_MAGIC, 8) &&
                     fread(&klen, 4, 1, f) == 1 && klen == strlen(key);
            char *stored = ok ? malloc(klen + 1) : NULL;
            ok = ok && stored && fread(stored, 1, klen, f) == klen && !memcmp(stored, key, klen) &&
                 fread(T, sizeof(float), 2 * (size_t)E, f) == 2 * (size_t)E && fgetc(f) == EOF;
            free(stored);
            fclose(f);
            if (ok) {
                if (from_cache) *from_cache = 1;
                free(key);
                return AAC_OK;
            }
        }
    }
    aac_status s = aac_text_anchors(m, tok, description, 1, T, err);
    if (!s && key) { /* best effort: a cache that cannot be written is not an error */
        const uint32_t klen = (uint32_t)strlen(key);
        const size_t n = 8 + 4 + klen + sizeof(float) * 2 * (size_t)E;
        char *buf = malloc(n);
        if (buf) {
            memcpy(buf, CACHE_MAGIC, 8);
            memcpy(buf + 8, &klen, 4);
            memcpy(buf + 12, key, klen);
            memcpy(buf + 12 + klen, T, sizeof(float) * 2 * (size_t)E);
            fs_write_atomic(path, buf, n, NULL); /* best effort: a cache */
            free(buf);
        }
    }
    free(key);
    return s;
}
