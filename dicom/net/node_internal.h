/* node_internal.h - the node's state machine (internal): the spool's files (spool.c), its jobs
 * (job.c), the worker that scores and delivers (worker.c), status.json (status.c). Everything
 * is recoverable from the files alone:
 *
 *   SPOOL/tmp/                         instances being received (removed at start)
 *   SPOOL/incoming/<study>/<series>/<sop>.dcm   received instances (acknowledged = here)
 *   SPOOL/pending/<series>.json        a series with instances no job covers yet
 *   SPOOL/jobs/<id>.json               a job and its state (rewritten atomically);
 *                                      a study's pending files are renamed into jobs/ when it
 *                                      has been idle long enough
 *   SPOOL/jobs/<id>.acked.json         what the destination acknowledged (aac_ledger)
 *   SPOOL/results/<patient>/<study>/<series>/   the scoring pipeline's folders
 *   SPOOL/status.json                  queue, running job, last errors (rewritten atomically)
 *   SPOOL/lock                         held (flock) by the node using the spool
 */
#ifndef AAC_NODE_INTERNAL_H
#define AAC_NODE_INTERNAL_H

#include <pthread.h>
#include <signal.h>

#include "net_internal.h"

typedef enum job_state {
    JOB_QUEUED = 0,     /* waiting for the worker */
    JOB_RUNNING = 1,    /* being scored (after a crash: queued again) */
    JOB_SCORED = 2,     /* results in place, being delivered */
    JOB_DONE = 3,       /* delivered (or nowhere to deliver) */
    JOB_SUPERSEDED = 4, /* a newer job of the same series replaced its results */
    JOB_FAILED = 5      /* the series could not be scored */
} job_state;

const char *job_state_name(job_state s);

typedef struct job {
    long id;
    char study[AAC_UID_LEN], series[AAC_UID_LEN], patient[AAC_LO_LEN];
    job_state state;
    char created[32], finished[32];
    int n_results;
    char **results;       /* result folders, relative to SPOOL/results */
    int sent, refused;    /* objects acknowledged / refused by the destination */
    char error[600];
    /* in memory only */
    int attempts;         /* delivery attempts that failed */
    double next_try;      /* net_now() of the next delivery attempt */
} job;

/* SPOOL/jobs/<id>.json; the id comes from the file name. */
aac_status job_read(const char *path, long id, job *out, aac_error *err);
aac_status job_write(const char *jobs_dir, const job *j, aac_error *err);
void job_free(job *j);
aac_status job_add_result(job *j, const char *rel, aac_error *err);
void job_path(const char *jobs_dir, long id, const char *suffix, char *out, size_t cap);

/* ---- the spool: studies receiving, pending series, jobs (spool.c) */
typedef struct spool_study {
    char uid[AAC_UID_LEN];
    double last;          /* net_now() of the last instance */
    int active;           /* instances being committed now */
    int instances;        /* received since the study's last jobs were queued */
} spool_study;

typedef struct spool_pending {
    char series[AAC_UID_LEN], study[AAC_UID_LEN];
} spool_pending;

typedef struct spool {
    char *dir, *tmp, *incoming, *pending_dir, *jobs_dir, *results;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* jobs changed, or stop */
    spool_study *studies;
    int n_studies, cap_studies;
    spool_pending *pending;
    int n_pending, cap_pending;
    job *jobs;            /* not final (queued, running, scored); final ones only counted */
    int n_jobs, cap_jobs;
    long max_id;
    long done, failed, superseded;
    long received, refused;
    long running_id;      /* 0: none */
    int lock_fd;          /* SPOOL/lock, flock'ed: one node per spool */
} spool;

/* Creates the folders, removes what a crash left in tmp/, loads pending series (their studies
 * wait for --study-idle again) and jobs (running ones are queued again). */
aac_status spool_open(const char *dir, spool *sp, net_log_fn log, void *user, aac_error *err);
void spool_close(spool *sp);
/* An instance is about to be committed: its series gets a pending file (durably) if it has
 * none, its study is marked active (not idle) until spool_receive_end. */
aac_status spool_receive_begin(spool *sp, const net_instance *in, aac_error *err);
void spool_receive_end(spool *sp, const char *study_uid, int committed);
/* Studies idle for idle_s: their pending series become queued jobs. Returns jobs made. */
int spool_close_idle(spool *sp, double idle_s, net_log_fn log, void *user);
/* The job with this id (under sp->mu), or NULL. */
job *spool_job(spool *sp, long id);
/* Writes j's state file and, for a final state, drops it from memory (under sp->mu). */
aac_status spool_job_update(spool *sp, job *j, aac_error *err);

#endif

/* ---- the node (node.c), its worker (worker.c) and status.json (status.c) */
enum { NODE_ERRORS = 10 };

struct aac_node {
    aac_node_params p;
    char *aet, *bind, *spool_dir, *allow, *dest_str;
    aac_net_peer dest;
    int has_dest;
    spool sp;
    net_scp *scp;
    net_pool *pool;                     /* NULL: no receive pool */
    volatile sig_atomic_t stop;
    int fatal;                          /* the worker could not start (model): run fails */
    char fatal_msg[1024];
    pthread_mutex_t log_mu;             /* one log line at a time; the error ring */
    char errors[NODE_ERRORS][700];      /* "time subject: message", newest last */
    int n_errors;
    char started[32];
    volatile int status_dirty;
};

/* The node's log: serialised, errors and refusals kept for status.json. */
void node_log(void *node, const char *event, const char *subject, const char *message);
/* The worker thread: opens the scorer, then scores queued jobs and delivers results until stop. */
void *node_worker(void *node);
/* SPOOL/status.json, atomically. */
void node_write_status(aac_node *n);
/* Whether instances are arriving: one being stored now, or one stored less than within_s
 * seconds ago (0 once the node is stopping). Thread-safe. */
int node_receiving(aac_node *n, double within_s);
