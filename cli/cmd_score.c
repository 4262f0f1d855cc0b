/* cmd_score.c - `aaclip score`: study folders in, per-series anomaly maps, scores and clinical
 * objects out, with a summary. The work is the scoring pipeline's (aaclip_score.h,
 * aac_score_paths); this file parses options, prints progress and log lines, and turns
 * SIGINT/SIGTERM into the pipeline's abort. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsutil.h"
#include "progress.h"

/* Set by the signal handler, read by the abort callback between slice batches. */
static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }
static int stop_requested(void *user) { return (void)user, g_stop != 0; }

typedef struct score_ui {
    cli_logger log;
    progress bar;
    int show_bar;
} score_ui;

static void on_log(void *user, aac_score_event ev, const char *series, const char *msg) {
    cli_log(&((score_ui *)user)->log, aac_score_event_name(ev), series, msg);
}

static void on_progress(void *user, int64_t done, int64_t total) {
    score_ui *ui = user;
    if (!ui->show_bar) return;
    if (ui->bar.total != (total > 0 ? total : 1)) progress_start(&ui->bar, "score", total);
    progress_update(&ui->bar, done, NULL);
}

static void score_help(void) {
    printf("usage: aaclip score PATH... -o OUTDIR [--model BUNDLE] [scoring options] [--json] [--quiet]\n"
           "\n"
           "Scores every image series found under PATH (study folders, folders of studies, DICOM\n"
           "files, NIfTI/NRRD/MetaImage volumes) and every PNG/JPEG picture (in colour). Results go\n"
           "to OUTDIR/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/ (volume files:\n"
           "OUTDIR/volumes/<path>/, pictures: OUTDIR/images/<path>/) with summary.json and\n"
           "summary.csv in OUTDIR. A series whose results are complete is skipped (--force redoes\n"
           "it). Without --model the bundled demo model is used (synthetic, not for clinical use;\n"
           "said on stderr and in summary.json). Exit status: 0 all series done, 1 some failed or\n"
           "the run was interrupted, 2 usage.\n"
           "\n"
           "  --json              log one JSON object per line on stderr\n"
           "  --quiet             no progress output\n"
           "\n");
    score_opts_help();
    model_opts_help();
}

int cmd_score(int argc, char **argv) {
    model_opts mo = {.params = aac_model_default_params()};
    aac_score_params sp = aac_score_default_params();
    score_ui ui = {{0, 0}, {0}, 0};
    const char *out_dir = NULL;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    int n_paths = 0;
    if (!paths) return 1;
    for (int i = 1; i < argc; i++) {
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (!r) r = score_opts_parse(&sp, "score", argc, argv, &i);
        if (r < 0) return free(paths), 2;
        if (r > 0) continue;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            score_help();
            return free(paths), 0;
        } else if (!strcmp(a, "--json")) {
            ui.log.json = 1;
        } else if (!strcmp(a, "--quiet")) {
            ui.log.quiet = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) return fprintf(stderr, "aaclip score: %s needs a value (see --help)\n", a), free(paths), 2;
            out_dir = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "aaclip score: unknown option '%s' (see --help)\n", a);
            return free(paths), 2;
        } else {
            paths[n_paths++] = a;
        }
    }
    if (!n_paths || !out_dir) {
        fprintf(stderr, "aaclip score: give at least one PATH and -o OUTDIR (see --help)\n");
        return free(paths), 2;
    }
    /* No model given: the bundled demo model, said loudly (stderr, summary.json). */
    const char *demo = default_demo_model_path();
    if (!mo.bundle && !mo.clip && demo && fs_exists(demo)) mo.bundle = demo, sp.demo_model = 1;
    if (model_opts_check(&mo, "score", 1)) return free(paths), 2;
    if (sp.demo_model)
        fprintf(stderr, "aaclip score: WARNING: no --model given: using the bundled DEMO model (%s), a synthetic "
                        "model that is not for clinical use\n", demo);
    set_threads(mo.params.n_threads);
    if (fs_mkdirs(out_dir)) {
        perror(out_dir);
        return free(paths), 1;
    }

    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    if (model_opts_open(&mo, &m, &tok)) return free(paths), 1;
    const char *files[2] = {mo.clip, mo.adapters};
    sp.model_name = mo.bundle ? mo.bundle : mo.clip;
    if (!mo.bundle) sp.model_files = files, sp.n_model_files = mo.adapters ? 2 : 1;
    sp.model_overridden = model_opts_overridden(&mo);
    sp.log = on_log, sp.progress = on_progress, sp.abort = stop_requested, sp.user = &ui;
    ui.show_bar = !ui.log.quiet && !ui.log.json;

    aac_error err = {0};
    aac_scorer *sc = NULL;
    aac_score_counts counts = {0};
    int rc = 1;
    if (aac_scorer_open(m, tok, mo.bundle, &sp, &sc, &err)) {
        fprintf(stderr, "aaclip score: %s\n", err.message);
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (aac_score_paths(sc, paths, n_paths, out_dir, &counts, &err)) {
        fprintf(stderr, "aaclip score: %s\n", err.message);
        goto out;
    }
    if (ui.show_bar && ui.bar.total) progress_finish(&ui.bar, NULL);
    if (!ui.log.quiet)
        fprintf(stderr, "aaclip: %d series scored, %d skipped (already done), %d failed%s; summary: %s/summary.json\n",
                counts.done, counts.skipped, counts.failed, counts.interrupted ? ", interrupted" : "", out_dir);
    rc = counts.failed || counts.interrupted ? 1 : 0;
out:
    aac_scorer_free(sc);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    free(paths);
    return rc;
}
