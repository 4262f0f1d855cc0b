/* names.c - AE titles, peer addresses, UIDs and allow lists: everything a node checks before a
 * name from the network is used (in a decision or as a file name). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "net_internal.h"

int aac_net_aet_valid(const char *s) {
    if (!s) return 0;
    size_t n = strlen(s);
    if (n == 0 || n > 16) return 0;
    int blank = 1;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '\\') return 0;
        if (c != ' ') blank = 0;
    }
    return !blank;
}

int aac_net_uid_valid(const char *s) {
    if (!s) return 0;
    const size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (c == '.') {
            if (i == 0 || s[i - 1] == '.' || i + 1 == n) return 0; /* empty component */
        } else if (c >= '0' && c <= '9') {
            /* a component of more than one digit does not start with 0 */
            if (c == '0' && (i == 0 || s[i - 1] == '.') && i + 1 < n && s[i + 1] != '.') return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

aac_status aac_net_peer_parse(const char *s, aac_net_peer *out, aac_error *err) {
    memset(out, 0, sizeof *out);
    const char *at = s ? strchr(s, '@') : NULL;
    const char *colon = at ? strrchr(at, ':') : NULL;
    if (!at || !colon || colon == at + 1)
        return aac_fail(err, AAC_ERR_ARG, "'%s': expected AE@host:port", s ? s : "");
    const size_t na = (size_t)(at - s), nh = (size_t)(colon - at - 1);
    if (na == 0 || na > 16) return aac_fail(err, AAC_ERR_ARG, "'%s': the AE title has 1 to 16 characters", s);
    memcpy(out->aet, s, na);
    if (!aac_net_aet_valid(out->aet)) return aac_fail(err, AAC_ERR_ARG, "'%s': '%s' is not a valid AE title", s, out->aet);
    if (nh >= sizeof out->host) return aac_fail(err, AAC_ERR_ARG, "'%s': host name too long", s);
    memcpy(out->host, at + 1, nh);
    for (size_t i = 0; i < nh; i++)
        if (!isalnum((unsigned char)out->host[i]) && !strchr(".-_:[]", out->host[i]))
            return aac_fail(err, AAC_ERR_ARG, "'%s': '%s' is not a host name or address", s, out->host);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 1 || port > 65535)
        return aac_fail(err, AAC_ERR_ARG, "'%s': the port is a number from 1 to 65535", s);
    out->port = (int)port;
    return AAC_OK;
}

/* Calls fn on each entry of "AE[@host],..."; stops when fn returns nonzero, returning that. */
static int each_entry(const char *list, int (*fn)(void *, const char *, const char *), void *ctx) {
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        const size_t n = end ? (size_t)(end - p) : strlen(p);
        char entry[300] = "", *host = NULL;
        snprintf(entry, sizeof entry, "%.*s", (int)(n < sizeof entry ? n : sizeof entry - 1), p);
        char *at = strchr(entry, '@');
        if (at) *at = '\0', host = at + 1;
        int r = fn(ctx, entry, host);
        if (r) return r;
        p += n + (end != NULL);
    }
    return 0;
}

static int check_entry(void *ctx, const char *aet, const char *host) {
    (void)ctx;
    if (!aac_net_aet_valid(aet) || (host && !host[0])) return 1;
    return 0;
}

aac_status net_allow_check(const char *allow, aac_error *err) {
    if (!allow) return AAC_OK;
    if (!allow[0] || each_entry(allow, check_entry, NULL))
        return aac_fail(err, AAC_ERR_ARG, "--allow '%s': expected AE[@host],... with valid AE titles", allow);
    return AAC_OK;
}

typedef struct {
    const char *aet, *host;
} who;

/* AE titles compare without their padding spaces; hosts exactly (a numeric address or the
 * name the peer's address is reported as). */
static int trimmed_equal(const char *a, const char *b) {
    while (*a == ' ') a++;
    while (*b == ' ') b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na && a[na - 1] == ' ') na--;
    while (nb && b[nb - 1] == ' ') nb--;
    return na == nb && !memcmp(a, b, na);
}

static int match_entry(void *ctx, const char *aet, const char *host) {
    const who *w = ctx;
    if (!trimmed_equal(aet, w->aet)) return 0;
    return !host || (w->host && !strcmp(host, w->host));
}

int net_allow_match(const char *allow, const char *calling_aet, const char *peer_host) {
    if (!allow || !allow[0]) return 1;
    who w = {calling_aet ? calling_aet : "", peer_host};
    return each_entry(allow, match_entry, &w) != 0;
}

double net_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void net_utc(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void net_logf(net_log_fn fn, void *user, const char *event, const char *subject, const char *fmt, ...) {
    if (!fn) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(user, event, subject, msg);
}
