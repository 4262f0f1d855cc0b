/* cmd_push.c - `aaclip push`: the DICOM result objects of a score output folder (SEG, Parametric
 * Map, SR) sent to a PACS by C-STORE. What the PACS acknowledged is kept in a ledger per
 * destination (RESULTS/.aaclip-push/<AE>@<host>_<port>.json), so running it again sends only
 * what was not acknowledged. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fsutil.h"
#include "net_opts.h"

typedef struct file_list {
    char **items;
    int n, cap;
} file_list;

static int add(file_list *l, const char *path) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->items, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->items = p, l->cap = cap;
    }
    return (l->items[l->n] = strdup(path)) ? (l->n++, 0) : -1;
}

/* Result objects under dir in name order; hidden folders (a scoring run's temporary folders,
 * the ledger) are not entered, symbolic links not followed. */
static int walk(const char *dir, int formats, file_list *out) {
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) return -1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (name[0] != '.' && !rc) {
            char *path = fs_join(dir, name);
            const int sel = (!strcmp(name, "seg_probability.dcm") || !strcmp(name, "seg_binary.dcm"))
                                ? formats & AAC_FORMAT_SEG
                            : !strcmp(name, "pmap.dcm") ? formats & AAC_FORMAT_PMAP
                            : !strcmp(name, "sr.dcm")   ? formats & AAC_FORMAT_SR
                                                        : 0;
            struct stat st;
            if (!path) rc = -1;
            else if (lstat(path, &st)) rc = 0; /* gone meanwhile */
            else if (S_ISDIR(st.st_mode)) rc = walk(path, formats, out);
            else if (sel && S_ISREG(st.st_mode)) rc = add(out, path);
            free(path);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

static void push_help(void) {
    printf("usage: aaclip push RESULTS --to AE@host:port [--send seg,pmap,sr] [options]\n"
           "\n"
           "Sends every DICOM result object under RESULTS (an `aaclip score` output folder:\n"
           "seg_probability.dcm, seg_binary.dcm, pmap.dcm, sr.dcm) by C-STORE over one association.\n"
           "Acknowledged objects are recorded in RESULTS/.aaclip-push/, one ledger per destination:\n"
           "running it again sends only what was not acknowledged. Exit status: 0 everything\n"
           "acknowledged (now or before), 1 something refused or not sent, 2 usage.\n"
           "\n"
           "  --to AE@host:port    the PACS\n"
           "  --send LIST          which objects: seg,pmap,sr (default all three)\n"
           "\n");
    net_opts_help("our AE title (calling)");
}

int cmd_push(int argc, char **argv) {
    net_opts no;
    memset(&no, 0, sizeof no);
    const char *to = NULL, *root = NULL;
    int formats = AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR;
    for (int i = 1; i < argc; i++) {
        int r = net_opts_parse(&no, "push", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return push_help(), 0;
        if (!strcmp(a, "--to") || !strcmp(a, "--send")) {
            if (!v) return fprintf(stderr, "aaclip push: %s needs a value (see --help)\n", a), 2;
            i++;
            aac_error e;
            if (!strcmp(a, "--to")) to = v;
            else if (aac_score_formats_parse(v, &formats, &e) ||
                     (formats & ~(AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR)))
                return fprintf(stderr, "aaclip push: --send expects a list of seg, pmap, sr, got '%s'\n", v), 2;
        } else if (a[0] == '-' || root) {
            return fprintf(stderr, "aaclip push: unexpected '%s' (see --help)\n", a), 2;
        } else {
            root = a;
        }
    }
    if (!root || !to) return fprintf(stderr, "aaclip push: give RESULTS and --to AE@host:port (see --help)\n"), 2;
    if (net_opts_check(&no, "push")) return 2;
    aac_net_scu_params p = aac_net_scu_default_params();
    aac_error err = {0};
    if (aac_net_peer_parse(to, &p.peer, &err)) return fprintf(stderr, "aaclip push: --to %s\n", err.message), 2;
    if (no.aet) p.aet = no.aet;
    if (no.timeout_s) p.timeout_s = no.timeout_s;
    p.tls = no.tls;
    p.log = net_log, p.user = &no.log;
    if (!fs_is_dir(root)) return fprintf(stderr, "aaclip push: %s: not a folder\n", root), 1;
    signal(SIGPIPE, SIG_IGN);
    setenv("TCP_NODELAY", "1", 0); /* DCMTK's connections: no Nagle delay on small PDUs */

    file_list files = {0};
    if (walk(root, formats, &files)) {
        fprintf(stderr, "aaclip push: %s: cannot list the folder\n", root);
        return 1;
    }
    char dir[4200], name[300], ledger_path[4600];
    snprintf(dir, sizeof dir, "%s/.aaclip-push", root);
    snprintf(name, sizeof name, "%s@%s_%d", p.peer.aet, p.peer.host, p.peer.port);
    char safe[300];
    fs_sanitize(name, safe, sizeof safe);
    snprintf(ledger_path, sizeof ledger_path, "%s/%s.json", dir, safe);
    aac_ledger *ledger = NULL;
    int rc = 1;
    aac_net_sent *outcome = calloc((size_t)files.n + 1, sizeof *outcome);
    if (!outcome) goto out;
    if (fs_mkdirs(dir) || aac_ledger_open(ledger_path, &ledger, &err)) {
        fprintf(stderr, "aaclip push: %s\n", err.code ? err.message : "cannot create the ledger folder");
        goto out;
    }
    aac_status s = aac_net_store_files(&p, (const char *const *)files.items, files.n, ledger, outcome, &err);
    int sent = 0, before = 0, refused = 0, not_sent = 0;
    for (int i = 0; i < files.n; i++) {
        if (outcome[i] == AAC_SENT_OK) sent++;
        else if (outcome[i] == AAC_SENT_SKIPPED) before++;
        else if (outcome[i] == AAC_SENT_NOT_SENT) not_sent++;
        else refused++;
    }
    if (s) fprintf(stderr, "aaclip push: %s\n", err.message);
    char msg[5000];
    snprintf(msg, sizeof msg, "%d object(s) found: %d sent, %d acknowledged before, %d refused, %d not sent; ledger %s",
             files.n, sent, before, refused, not_sent, ledger_path);
    cli_log(&no.log, s || refused || not_sent ? "error" : "done", to, msg);
    rc = s || refused || not_sent ? 1 : 0;
out:
    aac_ledger_free(ledger);
    free(outcome);
    for (int i = 0; i < files.n; i++) free(files.items[i]);
    free(files.items);
    return rc;
}
