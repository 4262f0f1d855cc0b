/* strlist.c - growable list of owned, formatted strings (notes, warnings). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

int strlist_addf(strlist *l, int level, const char *fmt, ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **it = realloc(l->items, (size_t)cap * sizeof *it);
        if (!it) return -1;
        l->items = it;
        int *lv = realloc(l->levels, (size_t)cap * sizeof *lv);
        if (!lv) return -1;
        l->levels = lv;
        l->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) return -1;
    char *s = malloc((size_t)len + 1);
    if (!s) return -1;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    l->items[l->n] = s;
    l->levels[l->n] = level;
    l->n++;
    return 0;
}

void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    free(l->levels);
    memset(l, 0, sizeof *l);
}

int strlist_copy(const strlist *l, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (l->n == 0) return 0;
    char **c = calloc((size_t)l->n, sizeof *c);
    if (!c) return -1;
    for (int i = 0; i < l->n; i++) {
        if (!(c[i] = strdup(l->items[i]))) {
            for (int j = 0; j < i; j++) free(c[j]);
            free(c);
            return -1;
        }
    }
    *out = c;
    *n = l->n;
    return 0;
}

void copy_trim(char *dst, size_t cap, const char *src) {
    if (!cap) return;
    size_t n = src ? strlen(src) : 0;
    while (n && (src[n - 1] == ' ' || src[n - 1] == '\0')) n--;
    while (n && *src == ' ') {
        src++;
        n--;
    }
    if (n > cap - 1) n = cap - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}
