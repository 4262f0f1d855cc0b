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
#include "score_job.h"

/* Set by the signal handler, read by the abort callback between slice batches. */
static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }
static int stop_requested(void *user) { return (void)user, g_stop != 0; }

void score_catch_signals(void) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int score_stop_requested(void) { return g_stop != 0; }

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
    printf("usage: aaclip score PATH... -o OUTDIR [--model BUNDLE] [scoring options] [--shard K/N]\n"
           "                    [--json] [--quiet]\n"
           "       mpirun -np N aaclip score PATH... -o OUTDIR [options] [--rank-timeout S]\n"
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
           "  --shard K/N         job arrays: score part K of N (1 <= K <= N) of the batch, a split\n"
           "                      that depends on the inputs only, balanced by slices; the rows go\n"
           "                      to OUTDIR/shards/K-of-N/summary.json and the last shard to finish\n"
           "                      writes OUTDIR/summary.json (else: aaclip summary merge OUTDIR)\n"
           "  --rank-timeout S    under mpirun: a rank silent for S seconds counts as dead and its\n"
           "                      series goes to another rank (default 60)\n"
           "\n"
           "Under mpirun (this build: %s) rank 0 scans and hands out series, largest first; every\n"
           "rank scores with --threads or the cores it was given; rank 0 writes the summary. Start\n"
           "Open MPI 4 with --enable-recovery so that a rank that dies does not stop the job.\n"
           "\n",
#ifdef AACLIP_WITH_MPI
           "with MPI"
#else
           "without MPI: use --shard"
#endif
    );
    score_opts_help();
    model_opts_help();
}

static int parse_shard(const char *v, aac_score_params *sp) {
    int k = 0, n = 0, used = 0;
    if (sscanf(v, "%d/%d%n", &k, &n, &used) != 2 || v[used] || n < 1 || n > 100000 || k < 1 || k > n) {
        fprintf(stderr, "aaclip score: --shard expects K/N with 1 <= K <= N (e.g. 3/8), got '%s'\n", v);
        return -1;
    }
    sp->shard = k, sp->shards = n;
    return 0;
}

int score_job_open(score_job *job, aac_model **m, aac_tokenizer **tok, aac_scorer **sc) {
    model_opts *mo = &job->mo;
    aac_score_params *sp = &job->sp;
    *m = NULL, *tok = NULL, *sc = NULL;
    set_threads(mo->params.n_threads);
    if (model_opts_open(mo, m, tok)) return -1;
    job->model_files[0] = mo->clip, job->model_files[1] = mo->adapters;
    sp->model_name = mo->bundle ? mo->bundle : mo->clip;
    if (!mo->bundle) sp->model_files = job->model_files, sp->n_model_files = mo->adapters ? 2 : 1;
    sp->model_overridden = model_opts_overridden(mo);
    aac_error err = {0};
    if (aac_scorer_open(*m, *tok, mo->bundle, sp, sc, &err)) {
        fprintf(stderr, "aaclip score: %s\n", err.message);
        aac_tokenizer_free(*tok);
        aac_model_free(*m);
        *m = NULL, *tok = NULL;
        return -1;
    }
    return 0;
}

int score_single(score_job *job) {
    score_ui ui = {job->log, {0}, 0};
    aac_score_params *sp = &job->sp;
    sp->log = on_log, sp->progress = on_progress, sp->abort = stop_requested, sp->user = &ui;
    ui.show_bar = !ui.log.quiet && !ui.log.json;
    if (fs_mkdirs(job->out_dir)) {
        perror(job->out_dir);
        return 1;
    }
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    aac_scorer *sc = NULL;
    if (score_job_open(job, &m, &tok, &sc)) return 1;
    aac_error err = {0};
    aac_score_counts counts = {0};
    int rc = 1;
    score_catch_signals();
    if (aac_score_paths(sc, job->paths, job->n_paths, job->out_dir, &counts, &err)) {
        fprintf(stderr, "aaclip score: %s\n", err.message);
    } else {
        if (ui.show_bar && ui.bar.total) progress_finish(&ui.bar, NULL);
        char where[64] = "summary.json";
        if (sp->shards) snprintf(where, sizeof where, "shards/%d-of-%d/summary.json", sp->shard, sp->shards);
        if (!ui.log.quiet)
            fprintf(stderr, "aaclip: %d series scored, %d skipped (already done), %d failed%s; summary: %s/%s\n",
                    counts.done, counts.skipped, counts.failed, counts.interrupted ? ", interrupted" : "", job->out_dir,
                    where);
        rc = counts.failed || counts.interrupted ? 1 : 0;
    }
    aac_scorer_free(sc);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return rc;
}

int cmd_score(int argc, char **argv) {
    score_job job = {.mo = {.params = aac_model_default_params()}, .sp = aac_score_default_params(),
                     .rank_timeout = 60};
    job.paths = calloc((size_t)argc, sizeof *job.paths);
    if (!job.paths) return 1;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        int r = model_opts_parse(&job.mo, argc, argv, &i);
        if (!r) r = score_opts_parse(&job.sp, "score", argc, argv, &i);
        if (r < 0) goto out;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            score_help();
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--json")) {
            job.log.json = 1;
        } else if (!strcmp(a, "--quiet")) {
            job.log.quiet = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--shard") ||
                   !strcmp(a, "--rank-timeout")) {
            if (!v) {
                fprintf(stderr, "aaclip score: %s needs a value (see --help)\n", a);
                goto out;
            }
            i++;
            int t;
            if (!strcmp(a, "--shard")) {
                if (parse_shard(v, &job.sp)) goto out;
            } else if (!strcmp(a, "--rank-timeout")) {
                if (parse_int(a, v, 1, 86400, &t)) goto out;
                job.rank_timeout = t;
            } else {
                job.out_dir = v;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "aaclip score: unknown option '%s' (see --help)\n", a);
            goto out;
        } else {
            job.paths[job.n_paths++] = a;
        }
    }
    if (!job.n_paths || !job.out_dir) {
        fprintf(stderr, "aaclip score: give at least one PATH and -o OUTDIR (see --help)\n");
        goto out;
    }
    /* No model given: the bundled demo model, said loudly (stderr, summary.json). */
    const char *demo = default_demo_model_path();
    if (!job.mo.bundle && !job.mo.clip && demo && fs_exists(demo)) job.mo.bundle = demo, job.sp.demo_model = 1;
    if (model_opts_check(&job.mo, "score", 1)) goto out;
    int size = 0, rank = 0;
    const int launched = mpi_launched(&size, &rank);
    if (job.sp.demo_model && rank == 0)
        fprintf(stderr, "aaclip score: WARNING: no --model given: using the bundled DEMO model (%s), a synthetic "
                        "model that is not for clinical use\n", demo);
#ifdef AACLIP_WITH_MPI
    if (launched) {
        rc = score_mpi(&job);
        goto out;
    }
#else
    if (launched && size != 1) {
        /* every process would score the whole batch into the same folders */
        if (rank == 0)
            fprintf(stderr, "aaclip score: started by an MPI launcher (%d processes), but this aaclip was built without "
                            "MPI: rebuild with Open MPI (Debian: libopenmpi-dev openmpi-bin), or run it without mpirun, "
                            "or split the batch with --shard K/N (docs/cluster.md)\n", size);
        rc = 2;
        goto out;
    }
#endif
    (void)launched;
    rc = score_single(&job);
out:
    free(job.paths);
    return rc;
}
