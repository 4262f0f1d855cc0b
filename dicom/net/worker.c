/* worker.c - the node's worker thread: loads the model once (open_scorer), scores queued jobs
 * with the shared pipeline (aac_score_series) and delivers results to the destination with
 * retries and backoff; receiving never waits for it. Jobs are looked up by id after every
 * unlocked step: the spool's job list may move while a series is scored. */
#define _GNU_SOURCE /* syscall(SYS_gettid): setpriority on this thread alone */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "node_internal.h"

/* Oldest queued job; an older one of a series queued again is superseded by the newer one. */
static job *next_queued(aac_node *n) {
    spool *sp = &n->sp;
    for (;;) {
        job *j = NULL;
        for (int i = 0; i < sp->n_jobs; i++)
            if (sp->jobs[i].state == JOB_QUEUED && (!j || sp->jobs[i].id < j->id)) j = &sp->jobs[i];
        if (!j) return NULL;
        long newer = 0;
        for (int i = 0; i < sp->n_jobs; i++)
            if (sp->jobs[i].state == JOB_QUEUED && sp->jobs[i].id > j->id && !strcmp(sp->jobs[i].series, j->series))
                newer = sp->jobs[i].id;
        if (!newer) return j;
        char subject[AAC_UID_LEN];
        snprintf(subject, sizeof subject, "%s", j->series);
        const long id = j->id;
        j->state = JOB_SUPERSEDED;
        net_utc(j->finished);
        aac_error e;
        if (spool_job_update(sp, j, &e)) node_log(n, "error", subject, e.message);
        net_logf(node_log, n, "job", subject, "job %ld superseded by job %ld (more instances arrived)", id, newer);
    }
}

static job *next_delivery(aac_node *n, double now, double *wake) {
    spool *sp = &n->sp;
    job *best = NULL;
    for (int i = 0; i < sp->n_jobs; i++) {
        job *j = &sp->jobs[i];
        if (j->state != JOB_SCORED) continue;
        if (j->next_try > now) {
            if (j->next_try < *wake) *wake = j->next_try;
            continue;
        }
        if (!best || j->id < best->id) best = j;
    }
    return best;
}

typedef struct scored {
    char **results;
    int n_results;
    char error[600];
} scored;

static void score_job(aac_node *n, aac_scorer *sc, long id, const char *study, const char *series, scored *out) {
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/%s/%s", n->sp.incoming, study, series);
    const char *paths[1] = {dir};
    aac_scan *scan = NULL;
    aac_error e;
    if (!fs_is_dir(dir)) {
        snprintf(out->error, sizeof out->error, "%.500s: no instances received", dir);
        return;
    }
    if (aac_scan_paths(paths, 1, &scan, &e)) {
        snprintf(out->error, sizeof out->error, "%.590s", e.message);
        return;
    }
    const int ns = aac_scan_series_count(scan);
    if (ns == 0)
        snprintf(out->error, sizeof out->error, "%.200s: no image series the ingestion can read%s%.300s", dir,
                 aac_scan_note_count(scan) ? ": " : "", aac_scan_note_count(scan) ? aac_scan_note(scan, 0, NULL) : "");
    for (int i = 0; i < ns; i++) {
        const aac_series_info *si = aac_scan_series(scan, i);
        char res[4400];
        aac_score_series_dir(n->sp.results, si, res, sizeof res);
        aac_score_result r;
        memset(&r, 0, sizeof r);
        if (aac_score_series(sc, scan, i, res, &r, &e)) {
            snprintf(out->error, sizeof out->error, "%.590s", e.message);
            continue;
        }
        if (r.state == AAC_SCORE_DONE || r.state == AAC_SCORE_SKIPPED) {
            const char *rel = res + strlen(n->sp.results) + 1;
            char **grown = realloc(out->results, (size_t)(out->n_results + 1) * sizeof *grown);
            if (grown && (grown[out->n_results] = strdup(rel))) out->results = grown, out->n_results++;
            else if (grown) out->results = grown;
            net_logf(node_log, n, "job", series, "job %ld: series scored (score %.4g, %d region(s)): results/%s", id,
                     r.series_score, r.regions, rel);
        } else {
            snprintf(out->error, sizeof out->error, "%.590s", r.state == AAC_SCORE_INTERRUPTED ? "interrupted" : r.error);
        }
        aac_score_result_free(&r);
    }
    aac_scan_free(scan);
}

/* The DICOM objects of a result folder that --send selects. */
static int result_files(aac_node *n, char **results, int n_results, char ***out) {
    static const struct {
        const char *name;
        int format;
    } k[] = {{"seg_probability.dcm", AAC_FORMAT_SEG}, {"seg_binary.dcm", AAC_FORMAT_SEG},
             {"pmap.dcm", AAC_FORMAT_PMAP}, {"sr.dcm", AAC_FORMAT_SR}};
    char **files = calloc((size_t)n_results * 4 + 1, sizeof *files);
    int nf = 0;
    for (int r = 0; files && r < n_results; r++)
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
            if (!(n->p.send_formats & k[i].format)) continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/%s/%s", n->sp.results, results[r], k[i].name);
            if (fs_exists(path)) files[nf++] = strdup(path);
        }
    *out = files;
    return nf;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* Sends a scored job's objects; returns 0 when the association worked (whatever the peer
 * answered per object), -1 to try again later. */
static int deliver(aac_node *n, long id, const char *series, char **results, int n_results, int *sent, int *refused,
                   char *why, size_t cap) {
    char **files = NULL;
    const int nf = result_files(n, results, n_results, &files);
    char ledger_path[4400];
    job_path(n->sp.jobs_dir, id, ".acked.json", ledger_path, sizeof ledger_path);
    aac_ledger *ledger = NULL;
    aac_error e;
    int rc = 0;
    if (aac_ledger_open(ledger_path, &ledger, &e)) {
        snprintf(why, cap, "%s", e.message);
        free_list(files, nf);
        return -1;
    }
    aac_net_sent *outcome = calloc((size_t)nf + 1, sizeof *outcome);
    aac_net_scu_params sp = aac_net_scu_default_params();
    sp.aet = n->aet;
    sp.peer = n->dest;
    sp.timeout_s = n->p.timeout_s;
    sp.tls = n->p.tls;
    sp.log = node_log, sp.user = n;
    if (!outcome) rc = -1, snprintf(why, cap, "out of memory");
    else if (nf && aac_net_store_files(&sp, (const char *const *)files, nf, ledger, outcome, &e))
        rc = -1, snprintf(why, cap, "%s", e.message);
    int ok = 0, bad = 0, skipped = 0;
    for (int i = 0; outcome && i < nf; i++) {
        if (outcome[i] == AAC_SENT_OK) ok++;
        else if (outcome[i] == AAC_SENT_SKIPPED) skipped++;
        else if (outcome[i] == AAC_SENT_REFUSED || outcome[i] == AAC_SENT_UNREADABLE) bad++;
    }
    *sent = aac_ledger_count(ledger);
    *refused = bad;
    if (!rc)
        net_logf(node_log, n, "sent", series, "job %ld: %d object(s) sent to %s, %d acknowledged before, %d refused",
                 id, ok, n->dest_str, skipped, bad);
    free(outcome);
    aac_ledger_free(ledger);
    free_list(files, nf);
    return rc;
}

static void wait_until(aac_node *n, double wake) {
    double now = net_now(), d = wake - now;
    if (d > 0.25) d = 0.25;
    if (d <= 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + d;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - floor(t)) * 1e9);
    pthread_cond_timedwait(&n->sp.cv, &n->sp.mu, &ts);
}

/* Scoring yields to receiving: at the scorer's check points (between slice batches, before a
 * volume's outputs are written) the worker waits while instances arrive, leaving the CPU and
 * the disk's flushes to the C-STOREs a sender is waiting on; at most 2 s at a time, so that a
 * continuous stream slows a job down but never stalls it. */
static void yield_to_receiving(void *node) {
    const struct timespec step = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 100 && node_receiving(node, 0.1); i++) nanosleep(&step, NULL);
}

/* Nice value the worker adds to the node's: receiving never waits for scoring, so the threads
 * that answer C-STORE win the CPU over the worker and the compute threads it starts (they
 * inherit its priority: Linux priorities are per thread). */
enum { WORKER_NICE = 10 };

void *node_worker(void *arg) {
    aac_node *n = arg;
    spool *sp = &n->sp;
    aac_scorer *sc = NULL;
    aac_error e = {0};
    const id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    const int base = getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && setpriority(PRIO_PROCESS, tid, base + WORKER_NICE) != 0)
        node_log(n, "warning", "", "the worker could not lower its CPU priority");
    if (n->p.open_scorer(n->p.user, &sc, &e)) {
        snprintf(n->fatal_msg, sizeof n->fatal_msg, "the scorer cannot be opened: %s", e.message);
        node_log(n, "error", "", n->fatal_msg);
        n->fatal = 1;
        aac_node_stop(n);
        return NULL;
    }
    aac_scorer_set_yield(sc, yield_to_receiving, n);
    node_log(n, "note", "", "model loaded: the worker is ready");
    pthread_mutex_lock(&sp->mu);
    /* Jobs scored for a destination this run does not have: their results stay in the spool. */
    for (int i = 0; !n->has_dest && i < sp->n_jobs; i++) {
        job *j = &sp->jobs[i];
        if (j->state != JOB_SCORED) continue;
        j->state = JOB_DONE;
        net_utc(j->finished);
        snprintf(j->error, sizeof j->error, "not delivered: the node was restarted without a destination");
        if (spool_job_update(sp, j, &e)) node_log(n, "error", "", e.message);
        i = -1; /* the list moved */
    }
    while (!n->stop) {
        job *j = next_queued(n);
        if (j) {
            const long id = j->id;
            char study[AAC_UID_LEN], series[AAC_UID_LEN];
            snprintf(study, sizeof study, "%s", j->study);
            snprintf(series, sizeof series, "%s", j->series);
            j->state = JOB_RUNNING;
            if (spool_job_update(sp, j, &e)) node_log(n, "error", series, e.message);
            sp->running_id = id;
            n->status_dirty = 1;
            pthread_mutex_unlock(&sp->mu);
            net_logf(node_log, n, "job", series, "job %ld: scoring (study %s)", id, study);
            scored out = {NULL, 0, ""};
            score_job(n, sc, id, study, series, &out);
            pthread_mutex_lock(&sp->mu);
            sp->running_id = 0;
            j = spool_job(sp, id);
            if (!j) {
                free_list(out.results, out.n_results);
                continue;
            }
            job_free(j);
            j->results = out.results, j->n_results = out.n_results;
            snprintf(j->error, sizeof j->error, "%s", out.error);
            j->state = out.n_results ? JOB_SCORED : JOB_FAILED;
            if (!out.n_results) net_utc(j->finished);
            if (out.error[0]) net_logf(node_log, n, "error", series, "job %ld: %s", id, out.error);
            /* older jobs of this series waiting to be delivered: their folders were replaced */
            for (int i = 0; i < sp->n_jobs; i++) {
                job *o = &sp->jobs[i];
                if (o->id < id && o->state == JOB_SCORED && !strcmp(o->series, series)) {
                    o->state = JOB_SUPERSEDED;
                    net_utc(o->finished);
                    net_logf(node_log, n, "job", series, "job %ld superseded by job %ld", o->id, id);
                    if (spool_job_update(sp, o, &e)) node_log(n, "error", series, e.message);
                    i = -1; /* the list moved */
                }
            }
            j = spool_job(sp, id);
            if (j && j->state == JOB_SCORED && !n->has_dest) {
                j->state = JOB_DONE;
                net_utc(j->finished);
                net_logf(node_log, n, "job", series, "job %ld done: results in the spool (no destination)", id);
            }
            if (j && spool_job_update(sp, j, &e)) node_log(n, "error", series, e.message);
            n->status_dirty = 1;
            continue;
        }
        double wake = net_now() + 0.25;
        if (n->has_dest && (j = next_delivery(n, net_now(), &wake))) {
            const long id = j->id;
            char series[AAC_UID_LEN];
            snprintf(series, sizeof series, "%s", j->series);
            char **results = calloc((size_t)j->n_results + 1, sizeof *results);
            const int nr = j->n_results;
            for (int i = 0; results && i < nr; i++) results[i] = strdup(j->results[i]);
            pthread_mutex_unlock(&sp->mu);
            int sent = 0, refused = 0;
            char why[1024] = "";
            const int rc = results ? deliver(n, id, series, results, nr, &sent, &refused, why, sizeof why) : -1;
            free_list(results, results ? nr : 0);
            pthread_mutex_lock(&sp->mu);
            if (!(j = spool_job(sp, id))) continue;
            j->sent = sent;
            j->refused = refused;
            if (rc) {
                j->attempts++;
                double delay = n->p.retry_min_s * pow(2.0, j->attempts - 1);
                if (delay > n->p.retry_max_s) delay = n->p.retry_max_s;
                j->next_try = net_now() + delay;
                net_logf(node_log, n, "error", series, "job %ld: delivery to %s failed (attempt %d), next in %.3g s: %s",
                         id, n->dest_str, j->attempts, delay, why);
            } else {
                j->state = JOB_DONE;
                net_utc(j->finished);
                if (refused) snprintf(j->error, sizeof j->error, "%d object(s) refused by %s", refused, n->dest_str);
                if (spool_job_update(sp, j, &e)) node_log(n, "error", series, e.message);
            }
            n->status_dirty = 1;
            continue;
        }
        wait_until(n, wake);
    }
    pthread_mutex_unlock(&sp->mu);
    if (n->p.close_scorer) n->p.close_scorer(n->p.user, sc);
    return NULL;
}
