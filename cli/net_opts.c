/* net_opts.c - options the network commands (serve, pull, push) share: TLS files, our AE title,
 * timeouts; and their log lines (cli_log: plain, or JSON with --json). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "net_opts.h"

int net_opts_parse(net_opts *o, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    static const char *const with_value[] = {"--tls-key", "--tls-cert", "--tls-ca", "--aet", "--timeout"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
    if (!strcmp(a, "--json")) return o->log.json = 1, 1;
    if (!strcmp(a, "--quiet")) return o->log.quiet = 1, 1;
    if (!known) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "aaclip %s: %s needs a value (see --help)\n", cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--tls-key")) o->tls.key = v;
    else if (!strcmp(a, "--tls-cert")) o->tls.cert = v;
    else if (!strcmp(a, "--tls-ca")) o->tls.ca = v;
    else if (!strcmp(a, "--timeout")) return parse_int(a, v, 1, 3600, &o->timeout_s) ? -1 : 1;
    else if (!aac_net_aet_valid(v)) {
        fprintf(stderr, "aaclip %s: --aet '%s' is not a valid AE title (1-16 characters, no backslash)\n", cmd, v);
        return -1;
    } else {
        o->aet = v;
    }
    return 1;
}

int net_opts_check(const net_opts *o, const char *cmd) {
    if ((o->tls.key || o->tls.cert || o->tls.ca) && !(o->tls.key && o->tls.cert)) {
        fprintf(stderr, "aaclip %s: TLS needs --tls-key and --tls-cert (and --tls-ca to verify the peer)\n", cmd);
        return -1;
    }
    return 0;
}

void net_opts_help(const char *aet_what) {
    printf("network options:\n"
           "  --aet AE            %s (default AACLIP)\n"
           "  --timeout S         connection, association and message timeout in seconds (30)\n"
           "  --tls-key FILE      TLS: our private key (PEM); with --tls-cert\n"
           "  --tls-cert FILE     TLS: our certificate (PEM)\n"
           "  --tls-ca FILE|DIR   TLS: CA certificate(s) the peer's certificate must chain to\n"
           "                      (without it the peer is not verified)\n"
           "  --json              log one JSON object per line on stderr\n"
           "  --quiet             errors only\n"
           "\n",
           aet_what);
}

void net_log(void *user, const char *event, const char *subject, const char *message) {
    const cli_logger *l = user;
    if (l->json) {
        cli_log(l, event, subject && subject[0] ? subject : NULL, message);
        return;
    }
    char who[400];
    snprintf(who, sizeof who, "%s%s%s", event, subject && subject[0] ? " " : "", subject ? subject : "");
    cli_log(l, event, who, message);
}
