/* cmd_serve.c - `aaclip serve`: a DICOM node next to a PACS. Studies arrive by C-STORE into a
 * spool, are scored by the shared pipeline once they have been idle for --study-idle seconds,
 * and the results (SEG, Parametric Map, SR) go back by C-STORE to --destination. The work is the
 * library's (aaclip_net.h, aac_node_*); this file parses options, opens the model on the node's
 * worker thread and turns SIGTERM/SIGINT into aac_node_stop. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsutil.h"
#include "net_opts.h"

static aac_node *g_node; /* for the signal handler only */
static void on_signal(int sig) {
    (void)sig;
    aac_node_stop(g_node);
}

typedef struct serve_ctx {
    model_opts mo;
    aac_score_params sp;
    net_opts no;
    aac_model *m;
    aac_tokenizer *tok;
    const char *files[2];
} serve_ctx;

static aac_status open_scorer(void *user, aac_scorer **out, aac_error *err) {
    serve_ctx *c = user;
    if (model_opts_open(&c->mo, &c->m, &c->tok)) {
        snprintf(err->message, sizeof err->message, "the model cannot be opened (see above)");
        return err->code = AAC_ERR_IO;
    }
    c->files[0] = c->mo.clip, c->files[1] = c->mo.adapters;
    c->sp.model_name = c->mo.bundle ? c->mo.bundle : c->mo.clip;
    if (!c->mo.bundle) c->sp.model_files = c->files, c->sp.n_model_files = c->mo.adapters ? 2 : 1;
    c->sp.model_overridden = model_opts_overridden(&c->mo);
    return aac_scorer_open(c->m, c->tok, c->mo.bundle, &c->sp, out, err);
}

static void close_scorer(void *user, aac_scorer *sc) {
    serve_ctx *c = user;
    aac_scorer_free(sc);
    aac_tokenizer_free(c->tok);
    aac_model_free(c->m);
    c->tok = NULL, c->m = NULL;
}

static void on_node_log(void *user, const char *event, const char *subject, const char *message) {
    net_log(&((serve_ctx *)user)->no.log, event, subject, message);
}

static void serve_help(void) {
    printf("usage: aaclip serve --spool DIR --model BUNDLE [--aet AE] [--port N] [--destination AE@host:port]\n"
           "                    [--allow AE[@host],...] [--study-idle S] [--send seg,pmap,sr] [options]\n"
           "\n"
           "A DICOM node: C-ECHO; C-STORE of the image storage SOP classes the ingestion reads, in every\n"
           "transfer syntax it decodes (compressed ones stored as received; other SOP classes refused at\n"
           "negotiation). Each instance is checked and in the spool (temp file, fsync, rename) before the\n"
           "response says success. A study is complete after --study-idle seconds without an instance;\n"
           "then each of its series is a job: scored once the model is loaded (one worker, receiving never\n"
           "waits), results written under DIR/results/ and sent to --destination, retried with backoff\n"
           "while it is down. A restart on the same spool loses nothing and sends nothing twice that was\n"
           "acknowledged. SIGTERM stops accepting, finishes the step in work and exits 0. DIR/status.json\n"
           "shows the queue, the running job and the last errors.\n"
           "\n"
           "  --spool DIR          received instances, jobs, results, status.json (required)\n"
           "  --aet AE             our AE title; the called AE title must match (default AACLIP)\n"
           "  --port N             TCP port (default 11112)\n"
           "  --bind ADDR          IPv4 address to listen on (default: all)\n"
           "  --destination AE@host:port  where results are sent (default: kept in the spool)\n"
           "  --allow LIST         calling AE titles accepted, AE or AE@host, comma-separated\n"
           "                       (default: any caller)\n"
           "  --study-idle S       seconds without an instance before a study is complete (30)\n"
           "  --send LIST          results sent: seg,pmap,sr (default all three)\n"
           "  --max-associations N associations at once; more are refused (16)\n"
           "  --max-pdu N          largest PDU we receive, bytes (131072, the most DCMTK takes)\n"
           "  --max-instance-mb N  larger instances are refused, their association aborted (2048)\n"
           "  --min-free-mb N      below this free on the spool's disk C-STORE is refused with\n"
           "                       \"out of resources\" (1024)\n"
           "  --receive-pool-mb N  files written ahead of time while no instance arrives, received\n"
           "                       into so that an instance's flush writes its data only (256;\n"
           "                       0: each instance into a new file)\n"
           "  --retry S1,S2        delivery backoff: first and longest wait in seconds (2,300)\n"
           "\n");
    net_opts_help("our AE title");
    score_opts_help();
    model_opts_help();
}

static int parse_mb(const char *opt, const char *v, int64_t *out) {
    int mb;
    if (parse_int(opt, v, 0, 1 << 30, &mb)) return -1;
    *out = (int64_t)mb << 20;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_ctx c;
    memset(&c, 0, sizeof c);
    c.mo.params = aac_model_default_params();
    c.sp = aac_score_default_params();
    c.sp.force = 1; /* a new job for a series replaces its results */
    aac_node_params np = aac_node_default_params();
    int formats_given = 0;
    for (int i = 1; i < argc; i++) {
        int r = model_opts_parse(&c.mo, argc, argv, &i);
        if (!r) {
            const int had = c.sp.formats;
            r = score_opts_parse(&c.sp, "serve", argc, argv, &i);
            if (r > 0 && c.sp.formats != had) formats_given = 1;
        }
        if (!r) r = net_opts_parse(&c.no, "serve", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_help();
            return 0;
        }
        static const char *const with_value[] = {"--spool", "--port", "--bind", "--destination", "--allow",
                                                 "--study-idle", "--send", "--max-associations", "--max-pdu",
                                                 "--max-instance-mb", "--min-free-mb", "--receive-pool-mb", "--retry"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            fprintf(stderr, "aaclip serve: unknown %s '%s' (see --help)\n", a[0] == '-' ? "option" : "argument", a);
            return 2;
        }
        if (!v) return fprintf(stderr, "aaclip serve: %s needs a value (see --help)\n", a), 2;
        i++;
        aac_error e;
        char *end;
        if (!strcmp(a, "--spool")) np.spool = v;
        else if (!strcmp(a, "--port") && parse_int(a, v, 1, 65535, &np.port)) return 2;
        else if (!strcmp(a, "--bind")) np.bind = v;
        else if (!strcmp(a, "--destination")) {
            aac_net_peer peer;
            if (aac_net_peer_parse(v, &peer, &e)) return fprintf(stderr, "aaclip serve: --destination %s\n", e.message), 2;
            np.destination = v;
        } else if (!strcmp(a, "--allow")) np.allow = v;
        else if (!strcmp(a, "--study-idle")) {
            np.study_idle_s = strtod(v, &end);
            if (*end || end == v || !(np.study_idle_s >= 0 && np.study_idle_s <= 86400))
                return fprintf(stderr, "aaclip serve: --study-idle expects seconds in 0..86400, got '%s'\n", v), 2;
        } else if (!strcmp(a, "--send")) {
            int mask;
            if (aac_score_formats_parse(v, &mask, &e) || (mask & ~(AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR)))
                return fprintf(stderr, "aaclip serve: --send expects a list of seg, pmap, sr, got '%s'\n", v), 2;
            np.send_formats = mask;
        } else if (!strcmp(a, "--max-associations") && parse_int(a, v, 1, 1000, &np.max_associations)) return 2;
        else if (!strcmp(a, "--max-pdu") && parse_int(a, v, 4096, 131072, &np.max_pdu)) return 2;
        else if (!strcmp(a, "--max-instance-mb") && parse_mb(a, v, &np.max_instance_bytes)) return 2;
        else if (!strcmp(a, "--min-free-mb") && parse_mb(a, v, &np.min_free_bytes)) return 2;
        else if (!strcmp(a, "--receive-pool-mb") && parse_mb(a, v, &np.receive_pool_bytes)) return 2;
        else if (!strcmp(a, "--retry")) {
            np.retry_min_s = strtod(v, &end);
            np.retry_max_s = *end == ',' ? strtod(end + 1, &end) : np.retry_min_s;
            if (*end || !(np.retry_min_s > 0) || !(np.retry_max_s >= np.retry_min_s))
                return fprintf(stderr, "aaclip serve: --retry expects MIN,MAX seconds with 0 < MIN <= MAX\n"), 2;
        }
    }
    if (!np.spool) return fprintf(stderr, "aaclip serve: give --spool DIR (see --help)\n"), 2;
    if (net_opts_check(&c.no, "serve")) return 2;
    const char *demo = default_demo_model_path();
    if (!c.mo.bundle && !c.mo.clip && demo && fs_exists(demo)) c.mo.bundle = demo, c.sp.demo_model = 1;
    if (model_opts_check(&c.mo, "serve", 1)) return 2;
    if (c.sp.demo_model)
        fprintf(stderr, "aaclip serve: WARNING: no --model given: using the bundled DEMO model (%s), a synthetic "
                        "model that is not for clinical use\n", demo);
    /* what is sent must be written */
    if (!formats_given) c.sp.formats = AAC_FORMAT_ALL;
    c.sp.formats |= np.send_formats;
    if (np.send_formats & AAC_FORMAT_SR) c.sp.formats |= AAC_FORMAT_SEG;
    c.sp.log = cli_log_score_event, c.sp.user = &c.no.log;
    set_threads(c.mo.params.n_threads);

    if (c.no.aet) np.aet = c.no.aet;
    if (c.no.timeout_s) np.timeout_s = c.no.timeout_s;
    np.tls = c.no.tls;
    np.open_scorer = open_scorer, np.close_scorer = close_scorer;
    np.log = on_node_log, np.user = &c;
    aac_error err = {0};
    if (aac_node_open(&np, &g_node, &err)) {
        fprintf(stderr, "aaclip serve: %s\n", err.message);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setenv("TCP_NODELAY", "1", 0); /* DCMTK's connections: no Nagle delay on small PDUs */
    const aac_status s = aac_node_run(g_node, &err);
    aac_node *n = g_node;
    g_node = NULL;
    aac_node_free(n);
    if (s) {
        fprintf(stderr, "aaclip serve: %s\n", err.message);
        return 1;
    }
    return 0;
}
