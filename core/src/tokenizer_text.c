/* tokenizer_text.c - text cleaning for the CLIP tokenizer, as the reference does it in Python:
 * html.unescape twice, str.strip, regex.sub(r'\s+', ' '), str.lower. Split from tokenizer.c
 * (which declares the two entry points) to keep the Unicode tables apart from the BPE code. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

size_t aac_tok_utf8_invalid_at(const char *text, size_t n);
size_t aac_tok_clean(const char *text, size_t n, char *work, char *out);

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
size_t aac_tok_utf8_invalid_at(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
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

/* Unicode White_Space, what the `regex` module's \s matches (CLIP's whitespace_clean). */
static int is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Python's str.isspace, used by str.strip(): White_Space plus U+001C..U+001F. */
static int is_py_space(uint32_t c) { return is_white_space(c) || (c >= 0x1C && c <= 0x1F); }

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

/* The final-sigma rule of str.lower() needs Unicode Case_Ignorable and Cased; exact tables would
 * cost ~600 ranges for a Greek-only detail, so both are approximated. Case_Ignorable: the
 * apostrophes, dots, modifier letters, combining marks and format controls met in practice. */
static int case_ignorable(uint32_t c) {
    return c == 0x27 || c == 0x2E || c == 0x3A || c == 0x5E || c == 0x60 || c == 0xA8 ||
           c == 0xAD || c == 0xAF || c == 0xB4 || c == 0xB7 || c == 0xB8 ||
           (c >= 0x2B0 && c <= 0x36F) || c == 0x374 || c == 0x375 || c == 0x37A || c == 0x384 ||
           c == 0x385 || c == 0x387 || (c >= 0x483 && c <= 0x489) || (c >= 0x1AB0 && c <= 0x1AFF) ||
           (c >= 0x1DC0 && c <= 0x1DFF) || c == 0x1FBD || (c >= 0x1FBF && c <= 0x1FC1) ||
           (c >= 0x1FCD && c <= 0x1FCF) || (c >= 0x1FDD && c <= 0x1FDF) ||
           (c >= 0x1FED && c <= 0x1FEF) || c == 0x1FFD || c == 0x1FFE ||
           (c >= 0x200B && c <= 0x200F) || c == 0x2018 || c == 0x2019 || c == 0x2024 ||
           c == 0x2027 || (c >= 0x2060 && c <= 0x2064) || (c >= 0x20D0 && c <= 0x20FF) ||
           (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xFE20 && c <= 0xFE2F);
}

/* Cased: a Latin, IPA, Greek or Cyrillic letter, else anything with a lower-case mapping or
 * the lower-case image of one (callers test case_ignorable first). */
static int cased(uint32_t c) {
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    if (c == 0xAA || c == 0xB5 || c == 0xBA ||
        (c >= 0xDF && c <= 0x2AF && c != 0xF7 && c != 0x1BB && !(c >= 0x1C0 && c <= 0x1C3) &&
         c != 0x294))
        return 1;
    if ((c >= 0x370 && c <= 0x3FF && c != 0x37E && c != 0x3F6 && !(c >= 0x378 && c <= 0x383) &&
         c != 0x38B && c != 0x38D && c != 0x3A2) || (c >= 0x400 && c <= 0x52F && c != 0x482) ||
        (c >= 0x1E00 && c <= 0x1FFF) || lower_cp(c) != c)
        return 1;
    for (size_t k = 0; k < sizeof tok_lower_table / sizeof tok_lower_table[0]; k++) {
        const tok_case *r = &tok_lower_table[k];
        int64_t off = (int64_t)c - r->delta - r->first;
        if (off >= 0 && off <= (int64_t)(r->last - r->first) && off % r->step == 0) return 1;
    }
    return 0;
}

/* strip(), White_Space runs -> one space, lower-case; `o` needs 3 * n / 2 + 4 bytes (a 2-byte
 * code point lower-cases to at most 3 bytes). Returns the output length. */
static size_t clean_lower(const char *s, size_t n, char *o) {
    /* strip() first: it also drops U+001C..U+001F, which the collapsing regex keeps. */
    size_t i = 0, w = 0;
    for (size_t k = 0; k < n && is_py_space(utf8_next(s, &k));) i = k;
    while (n > i) {
        size_t start = n - 1, k;
        while (start > i && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
        k = start;
        if (!is_py_space(utf8_next(s, &k))) break;
        n = start;
    }
    int pending_space = 0;
    uint32_t prev = ' '; /* last code point that is not case-ignorable */
    while (i < n) {
        uint32_t c = utf8_next(s, &i);
        if (is_white_space(c)) {
            pending_space = 1; /* never at the ends after strip() */
            prev = ' ';
            continue;
        }
        if (pending_space) o[w++] = ' ';
        pending_space = 0;
        if (c == 0x130) { /* the one multi-code-point mapping: i + combining dot above */
            w += utf8_put(o + w, 'i');
            w += utf8_put(o + w, 0x307);
        } else if (c == 0x3A3) {
            /* Final sigma: a cased letter before, none after (skipping case-ignorables). */
            size_t k = i;
            uint32_t next = ' ';
            while (k < n && case_ignorable(next = utf8_next(s, &k))) next = ' ';
            w += utf8_put(o + w, cased(prev) && !cased(next) ? 0x3C2 : 0x3C3);
        } else {
            w += utf8_put(o + w, lower_cp(c));
        }
        if (!case_ignorable(c)) prev = c;
    }
    return w;
}

/* The whole cleaning; `work` needs 2 * (n + 1) bytes and `out` 3 * n / 2 + 4. Returns the
 * cleaned length. The text must be valid UTF-8 (aac_tok_utf8_invalid_at). */
size_t aac_tok_clean(const char *text, size_t n, char *work, char *out) {
    if (memchr(text, '&', n)) { /* html.unescape(html.unescape(text)) */
        char *u1 = work, *u2 = work + n + 1;
        n = html_unescape(text, n, u1);
        n = html_unescape(u1, n, u2);
        text = u2;
    }
    return clean_lower(text, n, out);
}
