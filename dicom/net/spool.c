/* spool.c - the node's durable state (layout in node_internal.h): studies receiving, series
 * waiting for their study to be complete, jobs. A series' pending file is written before its
 * first instance is acknowledged and renamed into jobs/ when the study is complete, so a job is
 * never lost nor made twice, whatever moment the process dies at. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "node_internal.h"

static aac_status recover_received(spool *sp, net_log_fn log, void *user, aac_error *err);

static int grow(void **p, int *cap, int need, size_t size) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

static spool_study *find_study(spool *sp, const char *uid, int create) {
    for (int i = 0; i < sp->n_studies; i++)
        if (!strcmp(sp->studies[i].uid, uid)) return &sp->studies[i];
    if (!create || grow((void **)&sp->studies, &sp->cap_studies, sp->n_studies + 1, sizeof *sp->studies)) return NULL;
    spool_study *s = &sp->studies[sp->n_studies++];
    memset(s, 0, sizeof *s);
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    s->last = net_now();
    return s;
}

static int find_pending(const spool *sp, const char *series) {
    for (int i = 0; i < sp->n_pending; i++)
        if (!strcmp(sp->pending[i].series, series)) return i;
    return -1;
}

static aac_status add_job(spool *sp, const job *j, aac_error *err) {
    if (grow((void **)&sp->jobs, &sp->cap_jobs, sp->n_jobs + 1, sizeof *sp->jobs))
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    sp->jobs[sp->n_jobs++] = *j;
    return AAC_OK;
}

static int is_final(job_state s) { return s == JOB_DONE || s == JOB_SUPERSEDED || s == JOB_FAILED; }

static void count_final(spool *sp, job_state s) {
    if (s == JOB_DONE) sp->done++;
    else if (s == JOB_FAILED) sp->failed++;
    else if (s == JOB_SUPERSEDED) sp->superseded++;
}

/* Files in dir, sorted by name. */
static int list_dir(const char *dir, char ***out) {
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) return -1;
    char **names = calloc((size_t)n + 1, sizeof *names);
    for (int i = 0; i < n; i++) {
        if (names) names[i] = strdup(ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    *out = names;
    return names ? n : -1;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static aac_status load_pending(spool *sp, net_log_fn log, void *user, aac_error *err) {
    char **names;
    int n = list_dir(sp->pending_dir, &names);
    if (n < 0) return aac_fail(err, AAC_ERR_IO, "%s: cannot list: %s", sp->pending_dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = names[i];
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", sp->pending_dir, name);
        if (name[0] == '.') { /* "." "..", and temporary files a crash left */
            if (strcmp(name, ".") && strcmp(name, "..")) unlink(path);
            continue;
        }
        job j;
        if (!fs_ends_with(name, ".json") || job_read(path, 0, &j, NULL)) {
            net_logf(log, user, "error", name, "%s: not a pending series file, left alone", path);
            continue;
        }
        spool_study *st = find_study(sp, j.study, 1);
        if (!st || grow((void **)&sp->pending, &sp->cap_pending, sp->n_pending + 1, sizeof *sp->pending)) {
            job_free(&j);
            free_names(names, n);
            return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        }
        spool_pending *p = &sp->pending[sp->n_pending++];
        snprintf(p->series, sizeof p->series, "%s", j.series);
        snprintf(p->study, sizeof p->study, "%s", j.study);
        job_free(&j);
    }
    free_names(names, n);
    return AAC_OK;
}

static aac_status load_jobs(spool *sp, net_log_fn log, void *user, aac_error *err) {
    char **names;
    int n = list_dir(sp->jobs_dir, &names);
    if (n < 0) return aac_fail(err, AAC_ERR_IO, "%s: cannot list: %s", sp->jobs_dir, strerror(errno));
    aac_status s = AAC_OK;
    for (int i = 0; i < n && !s; i++) {
        const char *name = names[i];
        char path[4400], *end;
        snprintf(path, sizeof path, "%s/%s", sp->jobs_dir, name);
        if (name[0] == '.') {
            if (strcmp(name, ".") && strcmp(name, "..")) unlink(path);
            continue;
        }
        long id = strtol(name, &end, 10);
        if (end == name || strcmp(end, ".json")) continue; /* <id>.acked.json */
        if (id > sp->max_id) sp->max_id = id;
        job j;
        aac_error e;
        if (job_read(path, id, &j, &e)) {
            net_logf(log, user, "error", name, "%s", e.message);
            continue;
        }
        if (is_final(j.state)) {
            count_final(sp, j.state);
            job_free(&j);
            continue;
        }
        if (j.state == JOB_RUNNING) { /* interrupted: score again */
            j.state = JOB_QUEUED;
            for (int k = 0; k < j.n_results; k++) free(j.results[k]);
            j.n_results = 0;
            s = job_write(sp->jobs_dir, &j, err);
            net_logf(log, user, "job", j.series, "job %ld was interrupted while scoring: queued again", id);
        }
        if (!s) s = add_job(sp, &j, err);
        if (s) job_free(&j);
    }
    free_names(names, n);
    return s;
}

/* A complete received file cut to its DICOM content (its padding, when still there, goes). */
static int cut(const char *path, int64_t length) {
    const int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    const int r = fd < 0 || ftruncate(fd, length) ? -1 : 0;
    if (fd >= 0) close(fd);
    return r;
}

/* Files a crash left in tmp/. Complete ones, whatever their name (renames in tmp/ are not
 * synced): those whose receive record checks (rcvpool.c), cut to the length it gives, and .rcv
 * files of a node before the record. They were acknowledged and their move into incoming/ did
 * not reach the disk (put in place again, durably), or not acknowledged yet (kept too: the
 * sender sends them again, and the copy replaces them); one that fails the check is removed.
 * Pool files are left for the pool; anything else, a file being received among them (a cut
 * compressed dataset can pass the header check), is removed. */
static aac_status recover_received(spool *sp, net_log_fn log, void *user, aac_error *err) {
    char **names;
    int n = list_dir(sp->tmp, &names), kept = 0;
    aac_status s = AAC_OK;
    for (int i = 0; i < n && !s; i++) {
        if (!strcmp(names[i], ".") || !strcmp(names[i], "..")) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", sp->tmp, names[i]);
        net_instance in;
        aac_error e;
        uint32_t asked = 0;
        const int64_t length = net_rcv_record(path, &asked);
        if (length == -2 || (length >= 0 && cut(path, length))) {
            /* not readable now: kept for the next start rather than lost if acknowledged */
            net_logf(log, user, "error", names[i], "%s: cannot be read to check its receive record: %s", path,
                     strerror(errno));
            continue;
        }
        if (length < 0 && fs_ends_with(names[i], NET_POOL_SUFFIX)) continue;
        if ((length < 0 && !fs_ends_with(names[i], NET_DONE_SUFFIX)) || net_instance_check(path, NULL, 0, &in, &e) ||
            (length >= 0 && asked != net_rcv_request_crc(in.sop_class, in.sop_uid))) {
            /* incomplete, or refused before the crash: not what its C-STORE named */
            unlink(path);
            continue;
        }
        s = spool_receive_begin(sp, &in, err);
        if (s) break;
        const aac_status c = net_instance_commit(path, sp->incoming, &in, 1, 0, &e);
        spool_receive_end(sp, in.study_uid, c == AAC_OK);
        if (c) net_logf(log, user, "error", names[i], "%s", e.message);
        else kept++;
    }
    if (n >= 0) free_names(names, n);
    if (kept) net_logf(log, user, "note", "", "%d received instance(s) put in place after the restart", kept);
    return s;
}

aac_status spool_open(const char *dir, spool *sp, net_log_fn log, void *user, aac_error *err) {
    memset(sp, 0, sizeof *sp);
    sp->lock_fd = -1;
    pthread_mutex_init(&sp->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sp->cv, &ca);
    pthread_condattr_destroy(&ca);
    sp->dir = strdup(dir);
    sp->tmp = fs_join(dir, "tmp");
    sp->incoming = fs_join(dir, "incoming");
    sp->pending_dir = fs_join(dir, "pending");
    sp->jobs_dir = fs_join(dir, "jobs");
    sp->results = fs_join(dir, "results");
    char *dirs[] = {sp->tmp, sp->incoming, sp->pending_dir, sp->jobs_dir, sp->results};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (!sp->dir || !dirs[i]) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        if (fs_mkdirs(dirs[i])) return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", dirs[i], strerror(errno));
    }
    fs_sync_dir(dir);
    /* Two nodes on one spool would make every job twice. */
    char *lock = fs_join(dir, "lock");
    sp->lock_fd = lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    free(lock);
    if (sp->lock_fd < 0 || flock(sp->lock_fd, LOCK_EX | LOCK_NB))
        return aac_fail(err, AAC_ERR_IO, "%s: the spool is in use by another aaclip serve (or cannot be locked: %s)",
                        dir, strerror(errno));
    aac_status s = load_pending(sp, log, user, err);
    if (!s) s = load_jobs(sp, log, user, err);
    if (!s) s = recover_received(sp, log, user, err);
    if (!s && sp->n_pending)
        net_logf(log, user, "note", "", "%d series were receiving when the node stopped: their studies are complete "
                 "after the idle time", sp->n_pending);
    return s;
}

void spool_close(spool *sp) {
    for (int i = 0; i < sp->n_jobs; i++) job_free(&sp->jobs[i]);
    free(sp->jobs);
    free(sp->studies);
    free(sp->pending);
    free(sp->dir), free(sp->tmp), free(sp->incoming), free(sp->pending_dir), free(sp->jobs_dir), free(sp->results);
    if (sp->lock_fd >= 0) close(sp->lock_fd);
    pthread_mutex_destroy(&sp->mu);
    pthread_cond_destroy(&sp->cv);
    memset(sp, 0, sizeof *sp);
    sp->lock_fd = -1;
}

aac_status spool_receive_begin(spool *sp, const net_instance *in, aac_error *err) {
    aac_status s = AAC_OK;
    pthread_mutex_lock(&sp->mu);
    spool_study *st = find_study(sp, in->study_uid, 1);
    if (!st) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s && find_pending(sp, in->series_uid) < 0) {
        /* The series' next job, waiting for its study to be complete. */
        job j;
        memset(&j, 0, sizeof j);
        snprintf(j.study, sizeof j.study, "%s", in->study_uid);
        snprintf(j.series, sizeof j.series, "%s", in->series_uid);
        snprintf(j.patient, sizeof j.patient, "%s", in->patient_id);
        net_utc(j.created);
        j.state = JOB_QUEUED;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.json", sp->pending_dir, in->series_uid);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "state", "queued", "study", j.study, "series", j.series,
                              "created", j.created);
        char *text = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
        json_decref(o);
        if (!text) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        if (!s) s = fs_write_atomic(path, text, strlen(text), err);
        free(text);
        if (!s && grow((void **)&sp->pending, &sp->cap_pending, sp->n_pending + 1, sizeof *sp->pending))
            s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        if (!s) {
            spool_pending *p = &sp->pending[sp->n_pending++];
            snprintf(p->series, sizeof p->series, "%s", in->series_uid);
            snprintf(p->study, sizeof p->study, "%s", in->study_uid);
        }
    }
    if (!s) st->active++, st->last = net_now();
    pthread_mutex_unlock(&sp->mu);
    return s;
}

void spool_receive_end(spool *sp, const char *study_uid, int committed) {
    pthread_mutex_lock(&sp->mu);
    spool_study *st = find_study(sp, study_uid, 0);
    if (st) {
        st->active--;
        st->last = net_now();
        if (committed) st->instances++;
    }
    if (committed) sp->received++;
    else sp->refused++;
    pthread_mutex_unlock(&sp->mu);
}

int spool_close_idle(spool *sp, double idle_s, net_log_fn log, void *user) {
    int made = 0;
    pthread_mutex_lock(&sp->mu);
    const double now = net_now();
    for (int i = 0; i < sp->n_studies;) {
        spool_study *st = &sp->studies[i];
        if (st->active > 0 || now - st->last < idle_s) {
            i++;
            continue;
        }
        int queued = 0, failed = 0;
        for (int k = 0; k < sp->n_pending;) {
            spool_pending *p = &sp->pending[k];
            if (strcmp(p->study, st->uid)) {
                k++;
                continue;
            }
            char from[4400], to[4400];
            const long id = sp->max_id + 1;
            snprintf(from, sizeof from, "%s/%s.json", sp->pending_dir, p->series);
            job_path(sp->jobs_dir, id, ".json", to, sizeof to);
            job j;
            aac_error e;
            /* The series' instances were renamed into its folder without syncing it: make
             * those renames durable before the job that reads them. */
            char series_dir[4400];
            snprintf(series_dir, sizeof series_dir, "%s/%s/%s", sp->incoming, st->uid, p->series);
            fs_sync_dir(series_dir);
            /* The rename is the moment the job exists: before it the series is pending, after
             * it queued, never both. */
            if (job_read(from, id, &j, &e) || rename(from, to)) {
                net_logf(log, user, "error", p->series, "cannot queue a job: %s",
                         e.code ? e.message : strerror(errno));
                failed++;
                k++;
                continue;
            }
            fs_sync_dir(sp->jobs_dir);
            fs_sync_dir(sp->pending_dir);
            sp->max_id = id;
            if (add_job(sp, &j, &e)) job_free(&j);
            net_logf(log, user, "job", p->series, "job %ld queued (study %s)", id, st->uid);
            *p = sp->pending[--sp->n_pending];
            queued++;
        }
        if (failed) { /* try again at the next idle period */
            st->last = now;
            i++;
            continue;
        }
        net_logf(log, user, "study", st->uid, "complete after %.3g s without an instance: %d instance(s) received, "
                 "%d job(s) queued", idle_s, st->instances, queued);
        made += queued;
        sp->studies[i] = sp->studies[--sp->n_studies];
    }
    if (made) pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    return made;
}

job *spool_job(spool *sp, long id) {
    for (int i = 0; i < sp->n_jobs; i++)
        if (sp->jobs[i].id == id) return &sp->jobs[i];
    return NULL;
}

aac_status spool_job_update(spool *sp, job *j, aac_error *err) {
    aac_status s = job_write(sp->jobs_dir, j, err);
    if (is_final(j->state)) {
        count_final(sp, j->state);
        const long idx = j - sp->jobs;
        job_free(j);
        for (long i = idx; i + 1 < sp->n_jobs; i++) sp->jobs[i] = sp->jobs[i + 1];
        sp->n_jobs--;
    }
    return s;
}
