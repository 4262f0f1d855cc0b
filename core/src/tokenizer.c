/* tokenizer.c - CLIP byte-level BPE tokenizer (OpenAI simple_tokenizer semantics).
 *
 * Pipeline per text: clean (tokenizer_text.c: HTML-unescape twice, strip, collapse whitespace,
 * lower-case as Python does), split with the CLIP regex (PCRE2), BPE each piece over byte
 * symbols, then <sot> ids <eot> padded/cut to 77. Symbols are handled as vocabulary ids throughout:
 * a (left id, right id) -> (rank, merged id) hash replaces the reference's string pairs, which is
 * equivalent because each symbol string has exactly one id. ftfy.fix_text is not reproduced
 * (identity for clean text). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "error.h"

/* tokenizer_text.c: the first invalid byte offset of UTF-8 text (SIZE_MAX if valid), and the
 * reference's text cleaning into `out` (3 * n / 2 + 4 bytes) using `work` (2 * (n + 1) bytes). */
size_t aac_tok_utf8_invalid_at(const char *text, size_t n);
size_t aac_tok_clean(const char *text, size_t n, char *work, char *out);

/* CLIP keeps merges[1 : 49152 - 256 - 2 + 1] of the file, i.e. at most 48894 rules. */
#define TOK_MAX_MERGES (49152 - 256 - 2)
#define TOK_CONTENT_MAX (AAC_CONTEXT_LENGTH - 2) /* room between <sot> and <eot> */
#define TOK_SOT "<|startoftext|>"
#define TOK_EOT "<|endoftext|>"

/* The CLIP pattern, adjusted where PCRE2 and Python's `regex` disagree: under IGNORECASE `regex`
 * lets no alternative match U+0345 (it folds to a letter, iota), so it is dropped; and PCRE2's \s
 * also covers U+180E, which for `regex` is not space and so belongs to the last alternative. */
static const char tok_pattern[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
    "(?:[^\\s\\p{L}\\p{N}\\x{345}]|\\x{180E})+";

typedef struct tok_pair {
    uint64_t key; /* (left id << 32) | right id; TOK_EMPTY when the slot is free */
    int32_t rank;
    int32_t merged;
} tok_pair;
#define TOK_EMPTY UINT64_MAX

struct aac_tokenizer {
    int32_t n_vocab;
    char *arena;         /* all symbol strings, NUL-terminated */
    uint32_t *sym_off;   /* id -> offset in arena (UINT32_MAX: id unused) */
    uint32_t *sym_len;
    int32_t *sym_slots;  /* open addressing: symbol string -> id, -1 = free */
    size_t sym_mask;
    tok_pair *pairs;     /* open addressing: pair -> rank and merged id */
    size_t pair_mask;
    int32_t byte_id[256], byte_id_w[256]; /* byte symbol, and the same with </w> */
    int32_t sot, eot;
    pcre2_code *re;      /* read-only after open; match data is per call */
};

/* ------------------------------------------------------------------ hash tables */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 31);
}

static size_t table_size(size_t n) {
    size_t c = 64;
    while (c < 2 * n) c <<= 1;
    return c;
}

static int32_t sym_find(const aac_tokenizer *t, const char *s, size_t n) {
    for (size_t h = hash_bytes(s, n) & t->sym_mask;; h = (h + 1) & t->sym_mask) {
        int32_t id = t->sym_slots[h];
        if (id < 0) return -1;
        if (t->sym_len[id] == n && memcmp(t->arena + t->sym_off[id], s, n) == 0) return id;
    }
}

/* Inserts symbol `id`; a later id with the same string replaces the earlier one, like the
 * reference's dict(zip(vocab, range(len(vocab)))). */
static void sym_insert(aac_tokenizer *t, int32_t id) {
    const char *s = t->arena + t->sym_off[id];
    size_t n = t->sym_len[id];
    for (size_t h = hash_bytes(s, n) & t->sym_mask;; h = (h + 1) & t->sym_mask) {
        int32_t cur = t->sym_slots[h];
        if (cur < 0 || (t->sym_len[cur] == n && memcmp(t->arena + t->sym_off[cur], s, n) == 0)) {
            t->sym_slots[h] = id;
            return;
        }
    }
}

static const tok_pair *pair_find(const aac_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t h = hash_pair(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        const tok_pair *p = &t->pairs[h];
        if (p->key == key) return p;
        if (p->key == TOK_EMPTY) return NULL;
    }
}

/* A repeated pair keeps its last rank, as dict(zip(merges, range(len(merges)))) does. */
static void pair_insert(aac_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t h = hash_pair(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        tok_pair *p = &t->pairs[h];
        if (p->key == key || p->key == TOK_EMPTY) {
            p->key = key;
            p->rank = rank;
            p->merged = merged;
            return;
        }
    }
}

/* ------------------------------------------------------------------ loading */

/* UTF-8 of a byte symbol (all below U+0800). */
static size_t sym_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes map
 * to U+0100.. in byte order. order[k] is the byte of vocabulary id k. */
static void byte_symbols(uint32_t cp[256], uint8_t order[256]) {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        cp[b] = printable ? (uint32_t)b : 256u + (uint32_t)extra++;
        if (printable) order[k++] = (uint8_t)b;
    }
    for (int b = 0; b < 256; b++)
        if (cp[b] >= 256) order[k++] = (uint8_t)b;
}

/* One merge rule: two symbols pointing into the loaded file, and its line number. */
typedef struct tok_merge { const char *a, *b; size_t alen, blen; int line; } tok_merge;

static int only_blank(const char *p, const char *end) {
    for (; p < end; p++)
        if (!strchr(" \t\r\n", *p)) return 0;
    return 1;
}

/* Reads a merges file (gzip or plain): a "#version" line, then "left right" lines. Only the
 * first TOK_MAX_MERGES rules are kept. *text owns the bytes the merges point into. */
static aac_status read_merges(const char *path, char **text, tok_merge **merges, int *n_merges,
                              aac_error *err) {
    *text = NULL;
    *merges = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return aac_fail(err, AAC_ERR_IO, "cannot open merges file '%s': %s", path, strerror(errno));
    size_t len = 0, cap = 1 << 20, lines = 0;
    char *buf = malloc(cap);
    aac_status st = AAC_OK;
    /* The OpenAI file holds 262k lines; stop reading once the kept ones are in. */
    while (buf && lines <= TOK_MAX_MERGES + 1) {
        if (cap - len <= 65536) { /* keep a byte for the final NUL */
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
        int got = gzread(gz, buf + len, 65536);
        if (got < 0) {
            int zerr;
            st = aac_fail(err, AAC_ERR_IO, "error reading merges file '%s': %s", path,
                          gzerror(gz, &zerr));
            break;
        }
        if (got == 0) break;
        for (int k = 0; k < got; k++) lines += buf[len + (size_t)k] == '\n';
        len += (size_t)got;
    }
    gzclose(gz);
    if (!buf) return aac_fail(err, AAC_ERR_NOMEM, "out of memory reading '%s'", path);
    if (st != AAC_OK) { free(buf); return st; }
    buf[len] = '\0';

    tok_merge *m = malloc(sizeof *m * (lines + 1));
    if (!m) { free(buf); return aac_fail(err, AAC_ERR_NOMEM, "out of memory reading '%s'", path); }
    int n = 0, line = 0;
    for (char *p = buf; p < buf + len && n < TOK_MAX_MERGES;) {
        char *eol = memchr(p, '\n', (size_t)(buf + len - p));
        char *next = eol ? eol + 1 : buf + len;
        if (!eol) eol = buf + len;
        if (eol > p && eol[-1] == '\r') eol--;
        *eol = '\0';
        line++;
        if (line == 1) {
            /* CLIP drops line 1 unread; insisting on its header catches header-less files
             * that would silently lose their first rule (the OpenAI file starts with a quote). */
            if (!strstr(p, "#version")) {
                st = aac_fail(err, AAC_ERR_FORMAT, "%s:1: expected a '#version' header line", path);
                break;
            }
            p = next;
            continue;
        }
        if (p == eol && only_blank(next, buf + len)) break; /* trailing blank lines */
        /* Python's merge.split(): whitespace-separated fields, exactly two expected. */
        char *f[3] = {0};
        size_t fl[3] = {0};
        int nf = 0;
        for (char *q = p; q < eol;) {
            while (q < eol && (*q == ' ' || *q == '\t')) q++;
            if (q == eol) break;
            char *s = q;
            while (q < eol && *q != ' ' && *q != '\t') q++;
            if (nf < 3) { f[nf] = s; fl[nf] = (size_t)(q - s); }
            nf++;
        }
        if (nf != 2) {
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s:%d: expected two symbols separated by a space, got '%.60s'", path,
                          line, p);
            break;
        }
        m[n++] = (tok_merge){f[0], f[1], fl[0], fl[1], line};
        p = next;
    }
    if (st == AAC_OK && line == 0)
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: empty merges file", path);
    if (st != AAC_OK) { free(m); free(buf); return st; }
    *text = buf;
    *merges = m;
    *n_merges = n;
    return AAC_OK;
}

/* Allocates the symbol tables for n ids with `bytes` of string data. */
static aac_status tok_alloc(aac_tokenizer *t, int32_t n, size_t bytes, aac_error *err) {
    t->n_vocab = n;
    t->arena = malloc(bytes);
    t->sym_off = malloc(sizeof *t->sym_off * (size_t)n);
    t->sym_len = calloc((size_t)n, sizeof *t->sym_len);
    size_t cap = table_size((size_t)n);
    t->sym_mask = cap - 1;
    t->sym_slots = malloc(sizeof *t->sym_slots * cap);
    if (!t->arena || !t->sym_off || !t->sym_len || !t->sym_slots)
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory building the vocabulary");
    memset(t->sym_slots, 0xFF, sizeof *t->sym_slots * cap);
    for (int32_t i = 0; i < n; i++) t->sym_off[i] = UINT32_MAX;
    return AAC_OK;
}

/* Stores symbol `id` at arena offset *pos from up to two pieces (a merged rule is a + b). */
static void tok_set(aac_tokenizer *t, int32_t id, size_t *pos, const char *a, size_t alen,
                    const char *b, size_t blen) {
    char *d = t->arena + *pos;
    memcpy(d, a, alen);
    if (blen) memcpy(d + alen, b, blen);
    d[alen + blen] = '\0';
    t->sym_off[id] = (uint32_t)*pos;
    t->sym_len[id] = (uint32_t)(alen + blen);
    *pos += alen + blen + 1;
}

/* Shared by both loaders once the id -> string table is filled: symbol hash, byte symbols,
 * special ids, pair ranks, and the pre-tokeniser regex. */
static aac_status tok_finish(aac_tokenizer *t, const tok_merge *m, int n_merges,
                             const char *vocab_name, const char *merges_path, aac_error *err) {
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->sym_off[id] != UINT32_MAX) sym_insert(t, id);

    uint32_t cp[256];
    uint8_t order[256];
    byte_symbols(cp, order);
    for (int b = 0; b < 256; b++) {
        char s[16];
        size_t n = sym_utf8(s, cp[b]);
        memcpy(s + n, "</w>", 5);
        t->byte_id[b] = sym_find(t, s, n);
        t->byte_id_w[b] = sym_find(t, s, n + 4);
        if (t->byte_id[b] < 0 || t->byte_id_w[b] < 0)
            return aac_fail(err, AAC_ERR_MISSING, "%s: byte symbol '%.*s' (byte 0x%02X) missing%s",
                            vocab_name, (int)n, s, b, t->byte_id[b] < 0 ? "" : " with </w>");
    }
    t->sot = sym_find(t, TOK_SOT, strlen(TOK_SOT));
    t->eot = sym_find(t, TOK_EOT, strlen(TOK_EOT));
    if (t->sot < 0 || t->eot < 0)
        return aac_fail(err, AAC_ERR_MISSING, "%s: special token %s missing", vocab_name,
                        t->sot < 0 ? TOK_SOT : TOK_EOT);

    size_t cap = table_size((size_t)n_merges);
    t->pair_mask = cap - 1;
    t->pairs = malloc(sizeof *t->pairs * cap);
    if (!t->pairs) return aac_fail(err, AAC_ERR_NOMEM, "out of memory building the merge table");
    memset(t->pairs, 0xFF, sizeof *t->pairs * cap);
    char joined[1024];
    for (int r = 0; r < n_merges; r++) {
        int32_t a = sym_find(t, m[r].a, m[r].alen), b = sym_find(t, m[r].b, m[r].blen), ab = -1;
        if (m[r].alen + m[r].blen < sizeof joined) {
            memcpy(joined, m[r].a, m[r].alen);
            memcpy(joined + m[r].alen, m[r].b, m[r].blen);
            ab = sym_find(t, joined, m[r].alen + m[r].blen);
        }
        if (a < 0 || b < 0 || ab < 0) {
            const char *s = a < 0 ? m[r].a : b < 0 ? m[r].b : NULL;
            size_t sl = a < 0 ? m[r].alen : m[r].blen;
            if (s)
                return aac_fail(err, AAC_ERR_FORMAT,
                                "%s:%d: symbol '%.*s' is not in the vocabulary", merges_path,
                                m[r].line, (int)(sl > 60 ? 60 : sl), s);
            return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: merged symbol '%.*s%.*s' is not in %s",
                            merges_path, m[r].line, (int)(m[r].alen > 60 ? 60 : m[r].alen), m[r].a,
                            (int)(m[r].blen > 60 ? 60 : m[r].blen), m[r].b, vocab_name);
        }
        pair_insert(t, a, b, r, ab);
    }

    int ecode;
    PCRE2_SIZE eoff;
    t->re = pcre2_compile((PCRE2_SPTR)tok_pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &ecode, &eoff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        return aac_fail(err, AAC_ERR_UNSUPPORTED,
                        "PCRE2 cannot compile the CLIP pattern at %zu: %s", (size_t)eoff,
                        (const char *)msg);
    }
    /* JIT is an optional speed-up; without it PCRE2 interprets the same pattern. */
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return AAC_OK;
}

aac_status aac_tokenizer_open_bpe(const char *path, aac_tokenizer **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_open_bpe: out is NULL");
    *out = NULL;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_open_bpe: path is NULL");
    char *text;
    tok_merge *m;
    int nm;
    aac_status st = read_merges(path, &text, &m, &nm, err);
    if (st != AAC_OK) return st;

    aac_tokenizer *t = calloc(1, sizeof *t);
    size_t bytes = 256 * 2 * (2 + 1) + 256 * 4 + sizeof TOK_SOT + sizeof TOK_EOT;
    for (int r = 0; r < nm; r++) bytes += m[r].alen + m[r].blen + 1;
    /* Vocabulary order: bytes, bytes + </w>, one symbol per rule, <sot>, <eot>. */
    st = t ? tok_alloc(t, 512 + nm + 2, bytes, err)
           : aac_fail(err, AAC_ERR_NOMEM, "out of memory loading '%s'", path);
    if (st == AAC_OK) {
        uint32_t cp[256];
        uint8_t order[256];
        byte_symbols(cp, order);
        size_t pos = 0;
        for (int k = 0; k < 256; k++) {
            char s[4];
            size_t n = sym_utf8(s, cp[order[k]]);
            tok_set(t, k, &pos, s, n, NULL, 0);
            tok_set(t, 256 + k, &pos, s, n, "</w>", 4);
        }
        for (int r = 0; r < nm; r++)
            tok_set(t, 512 + r, &pos, m[r].a, m[r].alen, m[r].b, m[r].blen);
        tok_set(t, 512 + nm, &pos, TOK_SOT, strlen(TOK_SOT), NULL, 0);
        tok_set(t, 513 + nm, &pos, TOK_EOT, strlen(TOK_EOT), NULL, 0);
        st = tok_finish(t, m, nm, path, path, err);
    }
    free(m);
    free(text);
    if (st != AAC_OK) { aac_tokenizer_free(t); return st; }
    *out = t;
    return AAC_OK;
}

aac_status aac_tokenizer_open_hf(const char *vocab_json, const char *merges_txt,
                                 aac_tokenizer **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_open_hf: out is NULL");
    *out = NULL;
    if (!vocab_json || !merges_txt)
        return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_open_hf: path is NULL");
    FILE *f = fopen(vocab_json, "rb");
    if (!f)
        return aac_fail(err, AAC_ERR_IO, "cannot open vocabulary '%s': %s", vocab_json,
                        strerror(errno));
    json_error_t jerr;
    json_t *root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!root)
        return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: bad JSON: %s", vocab_json, jerr.line,
                        jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: expected a JSON object of token -> id",
                        vocab_json);
    }
    const char *key;
    json_t *val;
    json_int_t max_id = -1;
    size_t bytes = 0;
    aac_status st = AAC_OK;
    json_object_foreach(root, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= (1 << 24)) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: token '%.60s' has no valid integer id",
                          vocab_json, key);
            break;
        }
        if (id > max_id) max_id = id;
        bytes += strlen(key) + 1;
    }
    aac_tokenizer *t = NULL;
    if (st == AAC_OK && max_id < 0)
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: empty vocabulary", vocab_json);
    if (st == AAC_OK) {
        t = calloc(1, sizeof *t);
        st = t ? tok_alloc(t, (int32_t)max_id + 1, bytes + 1, err)
               : aac_fail(err, AAC_ERR_NOMEM, "out of memory loading '%s'", vocab_json);
    }
    size_t pos = 0;
    if (st == AAC_OK) {
        json_object_foreach(root, key, val) {
            int32_t id = (int32_t)json_integer_value(val);
            if (t->sym_off[id] != UINT32_MAX) {
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: id %d is used by both '%.60s' and '%.60s'",
                              vocab_json, (int)id, t->arena + t->sym_off[id], key);
                break;
            }
            tok_set(t, id, &pos, key, strlen(key), NULL, 0);
        }
    }
    json_decref(root);
    if (st == AAC_OK) {
        char *text;
        tok_merge *m;
        int nm;
        st = read_merges(merges_txt, &text, &m, &nm, err);
        if (st == AAC_OK) {
            st = tok_finish(t, m, nm, vocab_json, merges_txt, err);
            free(m);
            free(text);
        }
    }
    if (st != AAC_OK) { aac_tokenizer_free(t); return st; }
    *out = t;
    return AAC_OK;
}

void aac_tokenizer_free(aac_tokenizer *t) {
    if (!t) return;
    pcre2_code_free(t->re);
    free(t->arena);
    free(t->sym_off);
    free(t->sym_len);
    free(t->sym_slots);
    free(t->pairs);
    free(t);
}

/* ------------------------------------------------------------------ encoding */

/* BPE on one pre-token: w holds its byte symbols (the last with </w>). Each round merges every
 * occurrence of the lowest-ranked adjacent pair, left to right, exactly as CLIP's bpe().
 * Returns the new length. */
static size_t bpe_word(const aac_tokenizer *t, int32_t *w, size_t n) {
    while (n > 1) {
        const tok_pair *best = NULL;
        for (size_t i = 0; i + 1 < n; i++) {
            const tok_pair *p = pair_find(t, w[i], w[i + 1]);
            if (p && (!best || p->rank < best->rank)) best = p;
        }
        if (!best) break;
        int32_t a = (int32_t)(best->key >> 32), b = (int32_t)(uint32_t)best->key;
        size_t j = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && w[i] == a && w[i + 1] == b) {
                w[j++] = best->merged;
                i += 2;
            } else {
                w[j++] = w[i++];
            }
        }
        n = j;
    }
    return n;
}

aac_status aac_tokenizer_encode(const aac_tokenizer *tok, const char *text,
                                int32_t ids[AAC_CONTEXT_LENGTH], aac_error *err) {
    if (!tok || !text || !ids)
        return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_encode: NULL argument");
    size_t n = strlen(text), bad = aac_tok_utf8_invalid_at(text, n);
    if (bad != SIZE_MAX)
        return aac_fail(err, AAC_ERR_ARG,
                        "aac_tokenizer_encode: text is not valid UTF-8 (byte %zu)", bad);

    /* One block: the BPE word (a piece is never longer than the cleaned text), two unescape
     * buffers (n + 1 each) and the cleaned text. */
    size_t clean_cap = 3 * n / 2 + 4;
    int32_t *mem = malloc(sizeof(int32_t) * clean_cap + 2 * (n + 1) + clean_cap);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->re, NULL);
    if (!mem || !md) {
        free(mem);
        pcre2_match_data_free(md);
        return aac_fail(err, AAC_ERR_NOMEM, "aac_tokenizer_encode: out of memory");
    }
    int32_t *word = mem;
    char *work = (char *)(mem + clean_cap), *s = work + 2 * (n + 1);
    size_t len = aac_tok_clean(text, n, work, s);

    int32_t content[TOK_CONTENT_MAX];
    int nc = 0;
    aac_status st = AAC_OK;
    for (PCRE2_SIZE off = 0; off < len && nc < TOK_CONTENT_MAX;) {
        int rc = pcre2_match(tok->re, (PCRE2_SPTR)s, len, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = aac_fail(err, AAC_ERR_UNSUPPORTED, "aac_tokenizer_encode: PCRE2 match failed: %s",
                          (const char *)msg);
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        const char *piece = s + ov[0];
        size_t pl = ov[1] - ov[0];
        if (pl == 0) break; /* cannot happen: every alternative consumes a character */
        off = ov[1];
        if (pl == strlen(TOK_SOT) && memcmp(piece, TOK_SOT, pl) == 0) {
            content[nc++] = tok->sot;
        } else if (pl == strlen(TOK_EOT) && memcmp(piece, TOK_EOT, pl) == 0) {
            content[nc++] = tok->eot;
        } else {
            for (size_t i = 0; i + 1 < pl; i++) word[i] = tok->byte_id[(unsigned char)piece[i]];
            word[pl - 1] = tok->byte_id_w[(unsigned char)piece[pl - 1]];
            size_t wn = bpe_word(tok, word, pl);
            for (size_t i = 0; i < wn && nc < TOK_CONTENT_MAX; i++) content[nc++] = word[i];
        }
    }
    pcre2_match_data_free(md);
    free(mem);
    if (st != AAC_OK) return st;

    /* [sot] + ids + [eot], cut to 77 with eot last (keeping 75 ids is the same thing). */
    memset(ids, 0, sizeof(int32_t) * AAC_CONTEXT_LENGTH);
    ids[0] = tok->sot;
    memcpy(ids + 1, content, sizeof(int32_t) * (size_t)nc);
    ids[nc + 1] = tok->eot;
    return AAC_OK;
}
