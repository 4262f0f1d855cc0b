/* cmd_pull.c - `aaclip pull`: studies from a PACS into a folder that `aaclip score` reads. A
 * C-FIND at study level picks the studies, each is retrieved by C-GET (no inbound port) or, with
 * --move-port, by C-MOVE to a store SCP of ours. Files land as
 * DIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm, each checked and written atomically. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsutil.h"
#include "net_opts.h"

static void pull_help(void) {
    printf("usage: aaclip pull --from AE@host:port (--study UID | --patient ID | --accession N |\n"
           "                   --modality M --study-date FROM-TO) -o DIR [--move-port N] [options]\n"
           "\n"
           "Finds studies on a PACS (C-FIND, Study Root, study level; the keys given are combined) and\n"
           "retrieves each into DIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm by C-GET over the same\n"
           "association, or by C-MOVE to our AE title with --move-port (the PACS must know our AE title,\n"
           "host and that port). Every instance is checked by the ingestion before it is kept; then\n"
           "`aaclip score DIR` scores it. Exit status: 0 every study retrieved completely, 1 otherwise,\n"
           "2 usage.\n"
           "\n"
           "  --from AE@host:port  the PACS\n"
           "  --study UID          one study\n"
           "  --patient ID         the patient's studies\n"
           "  --accession N        by accession number\n"
           "  --modality M         studies holding this modality (e.g. CT)\n"
           "  --study-date R       YYYYMMDD, or a range FROM-TO (either side may be empty)\n"
           "  -o DIR               where the files go\n"
           "  --move-port N        retrieve by C-MOVE, our store SCP listening on port N\n"
           "  --bind ADDR          with --move-port: the IPv4 address to listen on (default all)\n"
           "\n");
    net_opts_help("our AE title (C-MOVE destination)");
}

int cmd_pull(int argc, char **argv) {
    net_opts no;
    memset(&no, 0, sizeof no);
    aac_net_query q = {0};
    const char *from = NULL, *out = NULL, *bind = NULL;
    int move_port = 0;
    for (int i = 1; i < argc; i++) {
        int r = net_opts_parse(&no, "pull", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return pull_help(), 0;
        static const char *const with_value[] = {"--from", "--study", "--patient", "--accession", "--modality",
                                                 "--study-date", "-o", "--output", "--move-port", "--bind"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) {
            fprintf(stderr, "aaclip pull: unknown %s '%s' (see --help)\n", a[0] == '-' ? "option" : "argument", a);
            return 2;
        }
        if (!v) return fprintf(stderr, "aaclip pull: %s needs a value (see --help)\n", a), 2;
        i++;
        if (!strcmp(a, "--from")) from = v;
        else if (!strcmp(a, "--study")) q.study_uid = v;
        else if (!strcmp(a, "--patient")) q.patient_id = v;
        else if (!strcmp(a, "--accession")) q.accession = v;
        else if (!strcmp(a, "--modality")) q.modality = v;
        else if (!strcmp(a, "--study-date")) q.study_date = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--bind")) bind = v;
        else if (parse_int(a, v, 1, 65535, &move_port)) return 2;
    }
    if (!from || !out) return fprintf(stderr, "aaclip pull: give --from AE@host:port and -o DIR (see --help)\n"), 2;
    if (!q.study_uid && !q.patient_id && !q.accession && !q.modality && !q.study_date)
        return fprintf(stderr, "aaclip pull: give --study, --patient, --accession, or --modality / --study-date\n"), 2;
    if (q.study_uid && !aac_net_uid_valid(q.study_uid))
        return fprintf(stderr, "aaclip pull: --study '%s' is not a valid UID\n", q.study_uid), 2;
    if (net_opts_check(&no, "pull")) return 2;
    aac_net_scu_params p = aac_net_scu_default_params();
    aac_error err = {0};
    if (aac_net_peer_parse(from, &p.peer, &err)) return fprintf(stderr, "aaclip pull: --from %s\n", err.message), 2;
    if (no.aet) p.aet = no.aet;
    if (no.timeout_s) p.timeout_s = no.timeout_s;
    p.tls = no.tls, p.bind = bind;
    p.log = net_log, p.user = &no.log;
    signal(SIGPIPE, SIG_IGN);
    setenv("TCP_NODELAY", "1", 0); /* DCMTK's connections: no Nagle delay on small PDUs */
    if (fs_mkdirs(out)) return perror(out), 1;

    aac_net_study *studies = NULL;
    int n = 0;
    if (aac_net_find_studies(&p, &q, &studies, &n, &err)) {
        fprintf(stderr, "aaclip pull: %s\n", err.message);
        return 1;
    }
    if (!n) {
        fprintf(stderr, "aaclip pull: no study on %s matches\n", from);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const aac_net_study *st = &studies[i];
        if (!no.log.quiet && !no.log.json)
            fprintf(stderr, "aaclip pull: study %s (patient %s, %s, %s, %s%s): retrieving\n", st->study_uid,
                    st->patient_id, st->study_date[0] ? st->study_date : "no date",
                    st->modalities[0] ? st->modalities : "modalities not given",
                    st->description[0] ? st->description : "no description", "");
        aac_net_retrieved c;
        if (aac_net_retrieve_study(&p, st->study_uid, move_port, out, &c, &err)) {
            fprintf(stderr, "aaclip pull: %s\n", err.message);
            rc = 1;
            continue;
        }
        char msg[4600];
        snprintf(msg, sizeof msg, "%d instance(s) stored in %s/%s, %d refused here, %d failed on the PACS", c.stored,
                 out, st->study_uid, c.failed, c.remote_failed);
        cli_log(&no.log, c.failed || c.remote_failed ? "error" : "done", st->study_uid, msg);
        if (c.failed || c.remote_failed || (st->n_instances > 0 && c.stored < st->n_instances)) rc = 1;
    }
    free(studies);
    return rc;
}
