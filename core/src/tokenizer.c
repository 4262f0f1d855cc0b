/* tokenizer.c - CLIP byte-level BPE tokenizer (OpenAI simple_tokenizer semantics).
 *
 * Pipeline per text: HTML-unescape twice, collapse whitespace + strip, lower-case (Python's
 * str.lower), split with the CLIP regex (PCRE2), BPE each piece over byte symbols, then
 * <sot> ids <eot> padded/cut to 77. Symbols are handled as vocabulary ids throughout: a
 * (left id, right id) -> (rank, merged id) hash replaces the reference's string pairs, which is
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

/* CLIP keeps merges[1 : 49152 - 256 - 2 + 1] of the file, i.e. at most 48894 rules. */
#define TOK_MAX_MERGES (49152 - 256 - 2)
#define TOK_CONTENT_MAX (AAC_CONTEXT_LENGTH - 2) /* room between <sot> and <eot> */
#define TOK_SOT "<|startoftext|>"
#define TOK_EOT "<|endoftext|>"

static const char tok_pattern[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
    "[^\\s\\p{L}\\p{N}]+";

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

/* ------------------------------------------------------------------ UTF-8 helpers */

static size_t utf8_put(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict validation (no overlongs, surrogates or > U+10FFFF), so later passes and PCRE2
 * (run with PCRE2_NO_UTF_CHECK) can decode without checks. Returns the bad offset or SIZE_MAX. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t min, cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; cp = c & 0x07; }
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return SIZE_MAX;
}

/* Decodes one code point of already validated UTF-8 at s[*i] and advances *i. */
static uint32_t utf8_next(const char *s, size_t *i) {
    const unsigned char *p = (const unsigned char *)s + *i;
    if (p[0] < 0x80) { *i += 1; return p[0]; }
    if (p[0] < 0xE0) { *i += 2; return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); }
    if (p[0] < 0xF0) {
        *i += 3;
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    *i += 4;
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

/* ------------------------------------------------------------------ text cleaning */

/* Python's html.unescape for one reference. Named entities: the 106 HTML5 names that may omit
 * the ';' (legacy = 1) plus common ones that need it; generated from html.entities.html5. */
typedef struct tok_entity { const char *name; uint32_t cp; int legacy; } tok_entity;
static const tok_entity tok_entities[] = { /* sorted by strcmp for bsearch */
    {"AElig", 0xC6, 1}, {"AMP", 0x26, 1}, {"Aacute", 0xC1, 1}, {"Acirc", 0xC2, 1},
    {"Agrave", 0xC0, 1}, {"Aring", 0xC5, 1}, {"Atilde", 0xC3, 1}, {"Auml", 0xC4, 1},
    {"COPY", 0xA9, 1}, {"Ccedil", 0xC7, 1}, {"Dagger", 0x2021, 0}, {"ETH", 0xD0, 1},
    {"Eacute", 0xC9, 1}, {"Ecirc", 0xCA, 1}, {"Egrave", 0xC8, 1}, {"Euml", 0xCB, 1},
    {"GT", 0x3E, 1}, {"Iacute", 0xCD, 1}, {"Icirc", 0xCE, 1}, {"Igrave", 0xCC, 1},
    {"Iuml", 0xCF, 1}, {"LT", 0x3C, 1}, {"Ntilde", 0xD1, 1}, {"OElig", 0x152, 0},
    {"Oacute", 0xD3, 1}, {"Ocirc", 0xD4, 1}, {"Ograve", 0xD2, 1}, {"Omega", 0x3A9, 0},
    {"Oslash", 0xD8, 1}, {"Otilde", 0xD5, 1}, {"Ouml", 0xD6, 1}, {"Prime", 0x2033, 0},
    {"QUOT", 0x22, 1}, {"REG", 0xAE, 1}, {"Scaron", 0x160, 0}, {"THORN", 0xDE, 1},
    {"Uacute", 0xDA, 1}, {"Ucirc", 0xDB, 1}, {"Ugrave", 0xD9, 1}, {"Uuml", 0xDC, 1},
    {"Yacute", 0xDD, 1}, {"Yuml", 0x178, 0}, {"aacute", 0xE1, 1}, {"acirc", 0xE2, 1},
    {"acute", 0xB4, 1}, {"aelig", 0xE6, 1}, {"agrave", 0xE0, 1}, {"alpha", 0x3B1, 0},
    {"amp", 0x26, 1}, {"apos", 0x27, 0}, {"aring", 0xE5, 1}, {"asymp", 0x2248, 0},
    {"atilde", 0xE3, 1}, {"auml", 0xE4, 1}, {"bdquo", 0x201E, 0}, {"beta", 0x3B2, 0},
    {"brvbar", 0xA6, 1}, {"bull", 0x2022, 0}, {"ccedil", 0xE7, 1}, {"cedil", 0xB8, 1},
    {"cent", 0xA2, 1}, {"check", 0x2713, 0}, {"circ", 0x2C6, 0}, {"copy", 0xA9, 1},
    {"cross", 0x2717, 0}, {"curren", 0xA4, 1}, {"dagger", 0x2020, 0}, {"deg", 0xB0, 1},
    {"delta", 0x3B4, 0}, {"divide", 0xF7, 1}, {"eacute", 0xE9, 1}, {"ecirc", 0xEA, 1},
    {"egrave", 0xE8, 1}, {"emsp", 0x2003, 0}, {"ensp", 0x2002, 0}, {"eth", 0xF0, 1},
    {"euml", 0xEB, 1}, {"euro", 0x20AC, 0}, {"fnof", 0x192, 0}, {"frac12", 0xBD, 1},
    {"frac14", 0xBC, 1}, {"frac34", 0xBE, 1}, {"gamma", 0x3B3, 0}, {"ge", 0x2265, 0},
    {"gt", 0x3E, 1}, {"harr", 0x2194, 0}, {"hellip", 0x2026, 0}, {"iacute", 0xED, 1},
    {"icirc", 0xEE, 1}, {"iexcl", 0xA1, 1}, {"igrave", 0xEC, 1}, {"infin", 0x221E, 0},
    {"iquest", 0xBF, 1}, {"iuml", 0xEF, 1}, {"laquo", 0xAB, 1}, {"larr", 0x2190, 0},
    {"ldquo", 0x201C, 0}, {"le", 0x2264, 0}, {"lrm", 0x200E, 0}, {"lsquo", 0x2018, 0},
    {"lt", 0x3C, 1}, {"macr", 0xAF, 1}, {"mdash", 0x2014, 0}, {"micro", 0xB5, 1},
    {"middot", 0xB7, 1}, {"minus", 0x2212, 0}, {"mu", 0x3BC, 0}, {"nbsp", 0xA0, 1},
    {"ndash", 0x2013, 0}, {"ne", 0x2260, 0}, {"not", 0xAC, 1}, {"ntilde", 0xF1, 1},
    {"oacute", 0xF3, 1}, {"ocirc", 0xF4, 1}, {"oelig", 0x153, 0}, {"ograve", 0xF2, 1},
    {"omega", 0x3C9, 0}, {"ordf", 0xAA, 1}, {"ordm", 0xBA, 1}, {"oslash", 0xF8, 1},
    {"otilde", 0xF5, 1}, {"ouml", 0xF6, 1}, {"para", 0xB6, 1}, {"permil", 0x2030, 0},
    {"pi", 0x3C0, 0}, {"plusmn", 0xB1, 1}, {"pound", 0xA3, 1}, {"prime", 0x2032, 0},
    {"quot", 0x22, 1}, {"raquo", 0xBB, 1}, {"rarr", 0x2192, 0}, {"rdquo", 0x201D, 0},
    {"reg", 0xAE, 1}, {"rlm", 0x200F, 0}, {"rsquo", 0x2019, 0}, {"sbquo", 0x201A, 0},
    {"scaron", 0x161, 0}, {"sect", 0xA7, 1}, {"shy", 0xAD, 1}, {"sigma", 0x3C3, 0},
    {"sup1", 0xB9, 1}, {"sup2", 0xB2, 1}, {"sup3", 0xB3, 1}, {"szlig", 0xDF, 1},
    {"thinsp", 0x2009, 0}, {"thorn", 0xFE, 1}, {"tilde", 0x2DC, 0}, {"times", 0xD7, 1},
    {"trade", 0x2122, 0}, {"uacute", 0xFA, 1}, {"ucirc", 0xFB, 1}, {"ugrave", 0xF9, 1},
    {"uml", 0xA8, 1}, {"uuml", 0xFC, 1}, {"yacute", 0xFD, 1}, {"yen", 0xA5, 1}, {"yuml", 0xFF, 1},
    {"zwj", 0x200D, 0}, {"zwnj", 0x200C, 0},
};
#define TOK_N_ENTITIES (sizeof tok_entities / sizeof tok_entities[0])

static const tok_entity *entity_find(const char *name, size_t len) {
    size_t lo = 0, hi = TOK_N_ENTITIES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(tok_entities[mid].name, name, len);
        if (c == 0 && tok_entities[mid].name[len] != '\0') c = 1;
        if (c == 0) return &tok_entities[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* html._invalid_charrefs for 0x80..0x9F: the Windows-1252 reading browsers apply. */
static const uint16_t tok_cp1252[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

/* Python's _replace_charref for &#NNN; / &#xHH;: returns bytes written (0: dropped). */
static size_t charref_put(char *o, uint32_t num) {
    if (num == 0) return utf8_put(o, 0xFFFD);
    if (num == 0x0D) return utf8_put(o, 0x0D);
    if (num >= 0x80 && num <= 0x9F) return utf8_put(o, tok_cp1252[num - 0x80]);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return utf8_put(o, 0xFFFD);
    if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
        num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return 0;
    return utf8_put(o, num);
}

/* One html.unescape pass. Output never exceeds the input length (every reference is at least
 * as long as its replacement), so `o` needs n + 1 bytes. Returns the output length. */
static size_t html_unescape(const char *s, size_t n, char *o) {
    size_t i = 0, w = 0;
    while (i < n) {
        if (s[i] != '&') { o[w++] = s[i++]; continue; }
        size_t j = i + 1;
        if (j < n && s[j] == '#') { /* &#[0-9]+;? or &#[xX][0-9a-fA-F]+;? */
            int hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t k = j + 1 + (size_t)hex, d = k;
            uint32_t num = 0;
            for (; d < n; d++) {
                int v = s[d] >= '0' && s[d] <= '9' ? s[d] - '0'
                        : hex && s[d] >= 'a' && s[d] <= 'f' ? s[d] - 'a' + 10
                        : hex && s[d] >= 'A' && s[d] <= 'F' ? s[d] - 'A' + 10 : -1;
                if (v < 0) break;
                num = num * (hex ? 16u : 10u) + (uint32_t)v;
                if (num > 0x10FFFF) num = 0x110000; /* saturate: any larger value -> U+FFFD */
            }
            if (d == k) { o[w++] = s[i++]; continue; } /* no digits: a literal '&' */
            w += charref_put(o + w, num);
            i = d < n && s[d] == ';' ? d + 1 : d;
            continue;
        }
        /* Named: [^\t\n\f <&#;]{1,32};? (32 code points). */
        size_t cps = 0;
        while (j < n && cps < 32 && s[j] && !strchr("\t\n\f <&#;", s[j])) {
            utf8_next(s, &j);
            cps++;
        }
        size_t name_len = j - (i + 1), end = j < n && s[j] == ';' ? j + 1 : j;
        const tok_entity *e = end > j ? entity_find(s + i + 1, name_len) : NULL;
        size_t used = name_len;
        /* Without an exact "name;" match, the longest legacy prefix (>= 2 chars) is taken and the
         * rest of the name is kept as text, as Python does ("&ampx" -> "&x"). */
        for (size_t L = name_len; !e && L >= 2; L--) {
            const tok_entity *p = entity_find(s + i + 1, L);
            if (p && p->legacy) { e = p; used = L; }
        }
        if (!e || cps == 0) { o[w++] = s[i++]; continue; }
        w += utf8_put(o + w, e->cp);
        if (used < name_len) {
            memcpy(o + w, s + i + 1 + used, end - (i + 1 + used));
            w += end - (i + 1 + used);
        }
        i = end;
    }
    return w;
}

/* Python's str.isspace (what re's \s matches in str patterns). */
static int is_py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's single-code-point lower-case mappings (Unicode 14, from str.lower): code points
 * first..last map to cp + delta, every `step`-th one (step 2: alternating upper/lower pairs). */
typedef struct tok_case { uint32_t first, last; int32_t delta, step; } tok_case;
static const tok_case tok_lower_table[] = {
    {0x41, 0x5A, 32, 1}, {0xC0, 0xD6, 32, 1}, {0xD8, 0xDE, 32, 1}, {0x100, 0x12E, 1, 2},
    {0x132, 0x136, 1, 2}, {0x139, 0x147, 1, 2}, {0x14A, 0x176, 1, 2}, {0x178, 0x178, -121, 1},
    {0x179, 0x17D, 1, 2}, {0x181, 0x181, 210, 1}, {0x182, 0x184, 1, 2}, {0x186, 0x186, 206, 1},
    {0x187, 0x187, 1, 1}, {0x189, 0x18A, 205, 1}, {0x18B, 0x18B, 1, 1}, {0x18E, 0x18E, 79, 1},
    {0x18F, 0x18F, 202, 1}, {0x190, 0x190, 203, 1}, {0x191, 0x191, 1, 1}, {0x193, 0x193, 205, 1},
    {0x194, 0x194, 207, 1}, {0x196, 0x196, 211, 1}, {0x197, 0x197, 209, 1}, {0x198, 0x198, 1, 1},
    {0x19C, 0x19C, 211, 1}, {0x19D, 0x19D, 213, 1}, {0x19F, 0x19F, 214, 1}, {0x1A0, 0x1A4, 1, 2},
    {0x1A6, 0x1A6, 218, 1}, {0x1A7, 0x1A7, 1, 1}, {0x1A9, 0x1A9, 218, 1}, {0x1AC, 0x1AC, 1, 1},
    {0x1AE, 0x1AE, 218, 1}, {0x1AF, 0x1AF, 1, 1}, {0x1B1, 0x1B2, 217, 1}, {0x1B3, 0x1B5, 1, 2},
    {0x1B7, 0x1B7, 219, 1}, {0x1B8, 0x1B8, 1, 1}, {0x1BC, 0x1BC, 1, 1}, {0x1C4, 0x1C4, 2, 1},
    {0x1C5, 0x1C5, 1, 1}, {0x1C7, 0x1C7, 2, 1}, {0x1C8, 0x1C8, 1, 1}, {0x1CA, 0x1CA, 2, 1},
    {0x1CB, 0x1DB, 1, 2}, {0x1DE, 0x1EE, 1, 2}, {0x1F1, 0x1F1, 2, 1}, {0x1F2, 0x1F4, 1, 2},
    {0x1F6, 0x1F6, -97, 1}, {0x1F7, 0x1F7, -56, 1}, {0x1F8, 0x21E, 1, 2}, {0x220, 0x220, -130, 1},
    {0x222, 0x232, 1, 2}, {0x23A, 0x23A, 10795, 1}, {0x23B, 0x23B, 1, 1}, {0x23D, 0x23D, -163, 1},
    {0x23E, 0x23E, 10792, 1}, {0x241, 0x241, 1, 1}, {0x243, 0x243, -195, 1},
    {0x244, 0x244, 69, 1}, {0x245, 0x245, 71, 1}, {0x246, 0x24E, 1, 2}, {0x370, 0x372, 1, 2},
    {0x376, 0x376, 1, 1}, {0x37F, 0x37F, 116, 1}, {0x386, 0x386, 38, 1}, {0x388, 0x38A, 37, 1},
    {0x38C, 0x38C, 64, 1}, {0x38E, 0x38F, 63, 1}, {0x391, 0x3A1, 32, 1}, {0x3A3, 0x3AB, 32, 1},
    {0x3CF, 0x3CF, 8, 1}, {0x3D8, 0x3EE, 1, 2}, {0x3F4, 0x3F4, -60, 1}, {0x3F7, 0x3F7, 1, 1},
    {0x3F9, 0x3F9, -7, 1}, {0x3FA, 0x3FA, 1, 1}, {0x3FD, 0x3FF, -130, 1}, {0x400, 0x40F, 80, 1},
    {0x410, 0x42F, 32, 1}, {0x460, 0x480, 1, 2}, {0x48A, 0x4BE, 1, 2}, {0x4C0, 0x4C0, 15, 1},
    {0x4C1, 0x4CD, 1, 2}, {0x4D0, 0x52E, 1, 2}, {0x531, 0x556, 48, 1}, {0x10A0, 0x10C5, 7264, 1},
    {0x10C7, 0x10C7, 7264, 1}, {0x10CD, 0x10CD, 7264, 1}, {0x13A0, 0x13EF, 38864, 1},
    {0x13F0, 0x13F5, 8, 1}, {0x1C90, 0x1CBA, -3008, 1}, {0x1CBD, 0x1CBF, -3008, 1},
    {0x1E00, 0x1E94, 1, 2}, {0x1E9E, 0x1E9E, -7615, 1}, {0x1EA0, 0x1EFE, 1, 2},
    {0x1F08, 0x1F0F, -8, 1}, {0x1F18, 0x1F1D, -8, 1}, {0x1F28, 0x1F2F, -8, 1},
    {0x1F38, 0x1F3F, -8, 1}, {0x1F48, 0x1F4D, -8, 1}, {0x1F59, 0x1F5F, -8, 2},
    {0x1F68, 0x1F6F, -8, 1}, {0x1F88, 0x1F8F, -8, 1}, {0x1F98, 0x1F9F, -8, 1},
    {0x1FA8, 0x1FAF, -8, 1}, {0x1FB8, 0x1FB9, -8, 1}, {0x1FBA, 0x1FBB, -74, 1},
    {0x1FBC, 0x1FBC, -9, 1}, {0x1FC8, 0x1FCB, -86, 1}, {0x1FCC, 0x1FCC, -9, 1},
    {0x1FD8, 0x1FD9, -8, 1}, {0x1FDA, 0x1FDB, -100, 1}, {0x1FE8, 0x1FE9, -8, 1},
    {0x1FEA, 0x1FEB, -112, 1}, {0x1FEC, 0x1FEC, -7, 1}, {0x1FF8, 0x1FF9, -128, 1},
    {0x1FFA, 0x1FFB, -126, 1}, {0x1FFC, 0x1FFC, -9, 1}, {0x2126, 0x2126, -7517, 1},
    {0x212A, 0x212A, -8383, 1}, {0x212B, 0x212B, -8262, 1}, {0x2132, 0x2132, 28, 1},
    {0x2160, 0x216F, 16, 1}, {0x2183, 0x2183, 1, 1}, {0x24B6, 0x24CF, 26, 1},
    {0x2C00, 0x2C2F, 48, 1}, {0x2C60, 0x2C60, 1, 1}, {0x2C62, 0x2C62, -10743, 1},
    {0x2C63, 0x2C63, -3814, 1}, {0x2C64, 0x2C64, -10727, 1}, {0x2C67, 0x2C6B, 1, 2},
    {0x2C6D, 0x2C6D, -10780, 1}, {0x2C6E, 0x2C6E, -10749, 1}, {0x2C6F, 0x2C6F, -10783, 1},
    {0x2C70, 0x2C70, -10782, 1}, {0x2C72, 0x2C72, 1, 1}, {0x2C75, 0x2C75, 1, 1},
    {0x2C7E, 0x2C7F, -10815, 1}, {0x2C80, 0x2CE2, 1, 2}, {0x2CEB, 0x2CED, 1, 2},
    {0x2CF2, 0x2CF2, 1, 1}, {0xA640, 0xA66C, 1, 2}, {0xA680, 0xA69A, 1, 2},
    {0xA722, 0xA72E, 1, 2}, {0xA732, 0xA76E, 1, 2}, {0xA779, 0xA77B, 1, 2},
    {0xA77D, 0xA77D, -35332, 1}, {0xA77E, 0xA786, 1, 2}, {0xA78B, 0xA78B, 1, 1},
    {0xA78D, 0xA78D, -42280, 1}, {0xA790, 0xA792, 1, 2}, {0xA796, 0xA7A8, 1, 2},
    {0xA7AA, 0xA7AA, -42308, 1}, {0xA7AB, 0xA7AB, -42319, 1}, {0xA7AC, 0xA7AC, -42315, 1},
    {0xA7AD, 0xA7AD, -42305, 1}, {0xA7AE, 0xA7AE, -42308, 1}, {0xA7B0, 0xA7B0, -42258, 1},
    {0xA7B1, 0xA7B1, -42282, 1}, {0xA7B2, 0xA7B2, -42261, 1}, {0xA7B3, 0xA7B3, 928, 1},
    {0xA7B4, 0xA7C2, 1, 2}, {0xA7C4, 0xA7C4, -48, 1}, {0xA7C5, 0xA7C5, -42307, 1},
    {0xA7C6, 0xA7C6, -35384, 1}, {0xA7C7, 0xA7C9, 1, 2}, {0xA7D0, 0xA7D0, 1, 1},
    {0xA7D6, 0xA7D8, 1, 2}, {0xA7F5, 0xA7F5, 1, 1}, {0xFF21, 0xFF3A, 32, 1},
    {0x10400, 0x10427, 40, 1}, {0x104B0, 0x104D3, 40, 1}, {0x10570, 0x1057A, 39, 1},
    {0x1057C, 0x1058A, 39, 1}, {0x1058C, 0x10592, 39, 1}, {0x10594, 0x10595, 39, 1},
    {0x10C80, 0x10CB2, 64, 1}, {0x118A0, 0x118BF, 32, 1}, {0x16E40, 0x16E5F, 32, 1},
    {0x1E900, 0x1E921, 34, 1},
};

static uint32_t lower_cp(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    size_t lo = 0, hi = sizeof tok_lower_table / sizeof tok_lower_table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const tok_case *r = &tok_lower_table[mid];
        if (c < r->first) hi = mid;
        else if (c > r->last) lo = mid + 1;
        else return (c - r->first) % (uint32_t)r->step ? c : (uint32_t)((int32_t)c + r->delta);
    }
    return c;
}

/* Approximates Unicode "cased" for the final-sigma rule: Latin, Greek and Cyrillic letters. */
static int looks_cased(uint32_t c) {
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    return (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x370 && c <= 0x52F) ||
           (c >= 0x1E00 && c <= 0x1FFF);
}

/* Whitespace runs -> one space, strip, lower-case; `o` needs 3 * n / 2 + 4 bytes (a 2-byte
 * code point lower-cases to at most 3 bytes). Returns the output length. */
static size_t clean_lower(const char *s, size_t n, char *o) {
    size_t i = 0, w = 0;
    int pending_space = 0;
    uint32_t prev = 0; /* previous code point, 0 after whitespace */
    while (i < n) {
        uint32_t c = utf8_next(s, &i);
        if (is_py_space(c)) {
            pending_space = w > 0;
            prev = 0;
            continue;
        }
        if (pending_space) o[w++] = ' ';
        pending_space = 0;
        if (c == 0x130) { /* the one multi-code-point mapping: i + combining dot above */
            w += utf8_put(o + w, 'i');
            w += utf8_put(o + w, 0x307);
        } else if (c == 0x3A3) { /* final sigma: after a cased letter and not before one */
            size_t k = i;
            int next_cased = k < n && looks_cased(utf8_next(s, &k));
            w += utf8_put(o + w, looks_cased(prev) && !next_cased ? 0x3C2 : 0x3C3);
        } else {
            w += utf8_put(o + w, lower_cp(c));
        }
        prev = c;
    }
    return w;
}

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
    if (!gz) return aac_fail(err, AAC_ERR_IO, "cannot open merges file '%s': %s", path, strerror(errno));
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
            st = aac_fail(err, AAC_ERR_IO, "error reading merges file '%s': %s", path, gzerror(gz, &zerr));
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
            st = aac_fail(err, AAC_ERR_FORMAT, "%s:%d: expected two symbols separated by a space, got '%.60s'",
                          path, line, p);
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
static aac_status tok_finish(aac_tokenizer *t, const tok_merge *m, int n_merges, const char *vocab_name,
                             const char *merges_path, aac_error *err) {
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->sym_off[id] != UINT32_MAX) sym_insert(t, id);

    uint32_t cp[256];
    uint8_t order[256];
    byte_symbols(cp, order);
    for (int b = 0; b < 256; b++) {
        char s[16];
        size_t n = utf8_put(s, cp[b]);
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
                return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: symbol '%.*s' is not in the vocabulary",
                                merges_path, m[r].line, (int)(sl > 60 ? 60 : sl), s);
            return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: merged symbol '%.*s%.*s' is not in %s", merges_path,
                            m[r].line, (int)(m[r].alen > 60 ? 60 : m[r].alen), m[r].a,
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
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "PCRE2 cannot compile the CLIP pattern at %zu: %s",
                        (size_t)eoff, (const char *)msg);
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* optional speed-up; interpreter otherwise */
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
            size_t n = utf8_put(s, cp[order[k]]);
            tok_set(t, k, &pos, s, n, NULL, 0);
            tok_set(t, 256 + k, &pos, s, n, "</w>", 4);
        }
        for (int r = 0; r < nm; r++) tok_set(t, 512 + r, &pos, m[r].a, m[r].alen, m[r].b, m[r].blen);
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

aac_status aac_tokenizer_open_hf(const char *vocab_json, const char *merges_txt, aac_tokenizer **out,
                                 aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_open_hf: out is NULL");
    *out = NULL;
    if (!vocab_json || !merges_txt) return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_open_hf: path is NULL");
    FILE *f = fopen(vocab_json, "rb");
    if (!f) return aac_fail(err, AAC_ERR_IO, "cannot open vocabulary '%s': %s", vocab_json, strerror(errno));
    json_error_t jerr;
    json_t *root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!root) return aac_fail(err, AAC_ERR_FORMAT, "%s:%d: bad JSON: %s", vocab_json, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: expected a JSON object of token -> id", vocab_json);
    }
    const char *key;
    json_t *val;
    json_int_t max_id = -1;
    size_t bytes = 0;
    aac_status st = AAC_OK;
    json_object_foreach(root, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= (1 << 24)) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: token '%.60s' has no valid integer id", vocab_json, key);
            break;
        }
        if (id > max_id) max_id = id;
        bytes += strlen(key) + 1;
    }
    aac_tokenizer *t = NULL;
    if (st == AAC_OK && max_id < 0) st = aac_fail(err, AAC_ERR_FORMAT, "%s: empty vocabulary", vocab_json);
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

aac_status aac_tokenizer_encode(const aac_tokenizer *tok, const char *text, int32_t ids[AAC_CONTEXT_LENGTH],
                                aac_error *err) {
    if (!tok || !text || !ids) return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_encode: NULL argument");
    size_t n = strlen(text), bad = utf8_invalid_at((const unsigned char *)text, n);
    if (bad != SIZE_MAX)
        return aac_fail(err, AAC_ERR_ARG, "aac_tokenizer_encode: text is not valid UTF-8 (byte %zu)", bad);

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
    char *u1 = (char *)(mem + clean_cap), *u2 = u1 + n + 1, *s = u2 + n + 1;
    const char *src = text;
    size_t len = n;
    if (memchr(text, '&', n)) { /* html.unescape(html.unescape(text)) */
        len = html_unescape(text, n, u1);
        len = html_unescape(u1, len, u2);
        src = u2;
    }
    len = clean_lower(src, len, s);

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
