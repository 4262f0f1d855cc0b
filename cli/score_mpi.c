/* score_mpi.c - `mpirun -np N aaclip score PATH... -o OUTDIR`: one batch scored by N ranks
 * with results identical to one process (built only when MPI is found; cmd_score.c calls it
 * when an MPI launcher started the process).
 *
 * Every rank runs two threads. The main thread opens the model and the scorer once and scores
 * the items it is given with the shared pipeline (aac_score_batch_score on rank 0, which laid
 * out the batch; aac_score_packed elsewhere: the item's files, frames and layout travel with
 * it, nobody scans again). The other thread does all the MPI calls (MPI_THREAD_SERIALIZED):
 * on rank 0 it is the coordinator, on the others a messenger.
 *
 * The coordinator hands out items dynamically, largest first, to whichever rank is idle
 * (itself included), collects each item's row and rewrites summary.json / summary.csv after
 * every series with the rows in batch order, so the summary is the single-process one whoever
 * finished first. A rank that dies must not lose the run: no blocking MPI call is ever made
 * (a dead peer would hang it), every rank sends a heartbeat each second, and a rank that is
 * silent for --rank-timeout seconds, or whose process is gone (same machine: its pid), counts
 * as dead; its item is handed to another rank once, and reported failed if that one dies too.
 * Rank 0's own death ends the run (the other ranks notice the silence and stop after their
 * current series); a rerun skips every complete series. Open MPI 4's mpirun kills the whole job
 * when a rank dies unless started with --enable-recovery (then it also always exits 0: the
 * summary's counts are the run's outcome); srun's default keeps the other tasks running. After
 * a death nobody calls MPI_Finalize (Open MPI 4.1's can wait for the dead rank for ever): rank 0
 * says so in STOP and every rank leaves with _exit.
 *
 * Messages (bytes): START 0->r the run's marker file (r checks it sees OUTDIR: a shared file
 * system); HELLO r->0 {state, host, boot id, pid, threads, error} as JSON; ITEM 0->r item
 * index + packed item; RESULT r->0 item index, state, wall seconds + row JSON; BEAT either
 * way, empty; STOP 0->r. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <errno.h>
#include <jansson.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "score_job.h"

enum { TAG_START = 1, TAG_HELLO, TAG_ITEM, TAG_RESULT, TAG_BEAT, TAG_STOP };
static const double BEAT_S = 1.0;   /* heartbeat period, both ways */
static const double CHECK_S = 0.2;  /* liveness checks */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- the two threads' mailbox */

typedef struct mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* to the scoring thread */
    int item;                 /* item to score, -1: none */
    void *buf;                /* its packed bytes (NULL on rank 0: scored from the batch) */
    size_t len;
    int stop;                 /* no more items: leave */
    /* from the scoring thread */
    int ready;                /* 0 starting, 1 scorer open (rank 0: batch laid out too), -1 failed */
    char why[1024];
    int result_item;          /* -1: none */
    aac_score_state result_state;
    char *result_row;         /* NULL: failed without a row (why in result_error) */
    char result_error[1024];
    double result_wall;       /* seconds the item took here */
} mailbox;

typedef struct run {
    score_job *job;
    int rank, size, threads;
    char host[256], boot[160];  /* boot: kernel boot id and pid namespace (read_machine_id) */
    mailbox mb;
    aac_score_batch *batch;   /* rank 0, once laid out */
    aac_scorer *sc;
    int stop_scoring;         /* the run asks the scorer to stop (rank 0 lost, ...) */
    int rc;                   /* rank 0: exit status */
    int skip_finalize;        /* a rank died: MPI_Finalize may wait for it for ever (Open MPI 4.1) */
} run;

static void mb_lock(run *r) { pthread_mutex_lock(&r->mb.mu); }
static void mb_unlock(run *r) {
    pthread_cond_broadcast(&r->mb.cv);
    pthread_mutex_unlock(&r->mb.mu);
}

/* Log lines of every rank: "aaclip[rank R]: SERIES: message", or JSON with a "rank" field. */
static void say(const run *r, const char *event, const char *series, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(const run *r, const char *event, const char *series, const char *fmt, ...) {
    const cli_logger *l = &r->job->log;
    if (l->quiet && strcmp(event, "error") && strcmp(event, "warning")) return;
    char msg[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i}", "event", event, "series", series ? series : "", "message", msg,
                              "rank", r->rank);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s) fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(stderr, "aaclip[rank %d]: %s%s%s\n", r->rank, series ? series : "", series ? ": " : "", msg);
    }
}

static void on_log(void *user, aac_score_event ev, const char *series, const char *msg) {
    say(user, aac_score_event_name(ev), series, "%s", msg);
}

static int on_abort(void *user) {
    run *r = user;
    return score_stop_requested() || __atomic_load_n(&r->stop_scoring, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- messages */

typedef struct out_msg {
    MPI_Request rq;
    void *buf;
    int dest;
} out_msg;

typedef struct in_msg {
    MPI_Request rq;
    char *buf;
    int len, source, tag;
} in_msg;

typedef struct wire {
    out_msg *out;
    int n_out, cap_out;
    in_msg *in;
    int n_in, cap_in;
} wire;

/* Sends a copy of data (never blocks; the copy is freed once MPI is done with it). */
static int send_bytes(wire *w, int dest, int tag, const void *a, size_t na, const void *b, size_t nb) {
    if (na + nb > (size_t)1 << 30) return -1;
    if (w->n_out == w->cap_out) {
        int cap = w->cap_out ? 2 * w->cap_out : 16;
        out_msg *p = realloc(w->out, sizeof *p * (size_t)cap);
        if (!p) return -1;
        w->out = p, w->cap_out = cap;
    }
    char *buf = malloc(na + nb + 1);
    if (!buf) return -1;
    if (na) memcpy(buf, a, na);
    if (nb) memcpy(buf + na, b, nb);
    out_msg *m = &w->out[w->n_out];
    if (MPI_Isend(buf, (int)(na + nb), MPI_BYTE, dest, tag, MPI_COMM_WORLD, &m->rq) != MPI_SUCCESS) {
        free(buf);
        return -1;
    }
    m->buf = buf, m->dest = dest;
    w->n_out++;
    return 0;
}

static void progress_sends(wire *w) {
    for (int i = 0; i < w->n_out;) {
        int done = 0;
        MPI_Test(&w->out[i].rq, &done, MPI_STATUS_IGNORE);
        if (done) {
            free(w->out[i].buf);
            w->out[i] = w->out[--w->n_out];
        } else {
            i++;
        }
    }
}

/* A dead rank's messages are dropped unfinished: their buffers stay allocated (MPI may still
 * hold them), a few bytes per death. */
static void forget_rank(wire *w, int rank) {
    for (int i = 0; i < w->n_out;)
        if (w->out[i].dest == rank) w->out[i] = w->out[--w->n_out];
        else i++;
    for (int i = 0; i < w->n_in;)
        if (w->in[i].source == rank) w->in[i] = w->in[--w->n_in];
        else i++;
}

/* Starts receiving every message that has arrived (matched probe: no blocking receive) and
 * returns one complete message, or 0 when none is complete. The caller frees m->buf. */
static int next_message(wire *w, in_msg *m) {
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &msg, &st) != MPI_SUCCESS || !flag) break;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (w->n_in == w->cap_in) {
            int cap = w->cap_in ? 2 * w->cap_in : 16;
            in_msg *p = realloc(w->in, sizeof *p * (size_t)cap);
            if (!p) return 0;
            w->in = p, w->cap_in = cap;
        }
        in_msg *in = &w->in[w->n_in];
        in->buf = malloc((size_t)count + 1);
        if (!in->buf) return 0;
        in->len = count, in->source = st.MPI_SOURCE, in->tag = st.MPI_TAG;
        MPI_Imrecv(in->buf, count, MPI_BYTE, &msg, &in->rq);
        w->n_in++;
    }
    for (int i = 0; i < w->n_in; i++) {
        int done = 0;
        MPI_Test(&w->in[i].rq, &done, MPI_STATUS_IGNORE);
        if (done) {
            *m = w->in[i];
            m->buf[m->len] = '\0';
            w->in[i] = w->in[--w->n_in];
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- where this rank runs */

/* What makes two ranks' pids comparable: the same kernel boot and the same pid namespace
 * (containers on one host share the boot id, and may share the host name). Empty when
 * unknown: then only heartbeats tell. */
static void read_machine_id(char *out, size_t cap) {
    char boot[64] = "", ns[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (fgets(boot, sizeof boot, f)) boot[strcspn(boot, "\n")] = '\0';
        fclose(f);
    }
    const ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    snprintf(out, cap, "%s", boot[0] && ns[0] ? boot : "");
    if (boot[0] && ns[0]) snprintf(out + strlen(out), cap - strlen(out), "/%s", ns);
}

/* Ranks on this node, as the launcher says (no collective call: a rank that died at start
 * would hang it); 1 when it does not say. */
static int local_ranks(void) {
    static const char *const names[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE",
                                        "SLURM_NTASKS_PER_NODE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        const int n = v ? atoi(v) : 0;
        if (n > 0) return n;
    }
    return 1;
}

/* --threads, else the cores this rank was given: its affinity mask when the launcher bound
 * it, else the machine's cores shared by the ranks on it. */
static int rank_threads(int requested, int local_ranks) {
    if (requested > 0) return requested;
    const char *per_task = getenv("SLURM_CPUS_PER_TASK"); /* sbatch/srun --cpus-per-task */
    if (per_task && atoi(per_task) > 0) return atoi(per_task);
    cpu_set_t set;
    int mask = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (mask < 1) mask = 1;
    if (mask < online || local_ranks <= 1) return mask;
    return mask / local_ranks > 1 ? mask / local_ranks : 1;
}

/* ---------------------------------------------------------------- the scoring thread */

/* Opens the scorer (rank 0: and lays out the batch), then scores what the mailbox brings
 * until told to stop. */
static void scoring_loop(run *r) {
    score_job *job = r->job;
    job->sp.log = on_log, job->sp.user = r, job->sp.abort = on_abort, job->sp.progress = NULL;
    job->mo.params.n_threads = r->threads;
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    aac_scorer *sc = NULL;
    aac_error err = {0};
    int ok = score_job_open(job, &m, &tok, &sc) == 0;
    if (!ok) snprintf(err.message, sizeof err.message, "the model or the scorer could not be opened (see above)");
    if (ok && r->rank == 0 && aac_score_batch_open(sc, job->paths, job->n_paths, job->out_dir, &r->batch, &err)) ok = 0;
    mb_lock(r);
    r->sc = sc;
    r->mb.ready = ok ? 1 : -1;
    snprintf(r->mb.why, sizeof r->mb.why, "%s", ok ? "" : err.message);
    mb_unlock(r);
    /* fault injection for the tests: this rank dies (SIGKILL) on its first item */
    const char *die = getenv("AACLIP_TEST_KILL_RANK");
    const int die_here = die && atoi(die) == r->rank && r->rank > 0;
    for (; ok;) {
        mb_lock(r);
        while (r->mb.item < 0 && !r->mb.stop) pthread_cond_wait(&r->mb.cv, &r->mb.mu);
        const int k = r->mb.item;
        void *buf = r->mb.buf;
        const size_t len = r->mb.len;
        pthread_mutex_unlock(&r->mb.mu);
        if (k < 0) break;
        if (die_here) kill(getpid(), SIGKILL);
        const double t0 = now_s();
        aac_score_result res;
        memset(&res, 0, sizeof res);
        aac_error e2 = {0};
        aac_status st = r->rank == 0 ? aac_score_batch_score(sc, r->batch, k, &res, &e2)
                                     : aac_score_packed(sc, buf, len, &res, &e2);
        mb_lock(r);
        free(r->mb.buf);
        r->mb.buf = NULL, r->mb.item = -1;
        r->mb.result_item = k;
        r->mb.result_state = st ? AAC_SCORE_FAILED : res.state;
        r->mb.result_row = st ? NULL : res.row_json;
        snprintf(r->mb.result_error, sizeof r->mb.result_error, "%s", st ? e2.message : res.error);
        r->mb.result_wall = now_s() - t0;
        mb_unlock(r);
        res.row_json = NULL;
        /* wait until the messenger has taken the result before the next item */
        mb_lock(r);
        while (r->mb.result_item >= 0 && !r->mb.stop) pthread_cond_wait(&r->mb.cv, &r->mb.mu);
        pthread_mutex_unlock(&r->mb.mu);
    }
    mb_lock(r);
    while (!r->mb.stop) pthread_cond_wait(&r->mb.cv, &r->mb.mu); /* the messenger ends the run */
    r->sc = NULL;
    free(r->mb.result_row);
    r->mb.result_row = NULL;
    mb_unlock(r);
    aac_scorer_free(sc);
    aac_tokenizer_free(tok);
    aac_model_free(m);
}

/* ---------------------------------------------------------------- a worker's messenger */

typedef struct result_head {
    int32_t item, state, has_row, pad;
    double wall;
} result_head;

static void hello(run *r, wire *w, int state, const char *why) {
    json_t *j = json_pack("{s:i, s:s, s:s, s:I, s:i, s:s}", "state", state, "host", r->host, "boot", r->boot, "pid",
                          (json_int_t)getpid(), "threads", r->threads, "error", why ? why : "");
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) send_bytes(w, 0, TAG_HELLO, s, strlen(s), NULL, 0);
    free(s);
    json_decref(j);
}

static void *worker(void *arg) {
    run *r = arg;
    const double timeout = r->job->rank_timeout;
    wire w = {0};
    hello(r, &w, 0, NULL); /* who and where, before the model is loaded */
    double last0 = now_s(), last_beat = now_s(), start_until = 0;
    int said = 0, stop = 0, lost = 0, left = 0, start = 0; /* start: 0 waiting, 1 looking, 2 seen, -1 not seen */
    char marker[4400] = "";
    double last_loop = now_s();
    while (!stop) {
        int busy = 0;
        /* a stall of this process (stopped, starved) is not rank 0's silence: the time is taken
         * once per turn, and silence judged on it before anything else can stall */
        const double now = now_s();
        if (now - last_loop > 1.0) last0 += now - last_loop;
        last_loop = now;
        if (now - last0 > timeout) {
            lost = 1;
            say(r, "error", NULL, "rank 0 has been silent for %.0f s: stopping after the series in work (finished "
                "series are in place; run the same command again to finish the batch)", timeout);
            break;
        }
        progress_sends(&w);
        in_msg m;
        while (next_message(&w, &m)) {
            busy = 1;
            if (m.source != 0) {
                free(m.buf);
                continue;
            }
            last0 = now_s();
            if (m.tag == TAG_START && !start) {
                snprintf(marker, sizeof marker, "%s", m.buf);
                start = 1;
                start_until = now_s() + (timeout / 2 < 30 ? timeout / 2 : 30);
            } else if (m.tag == TAG_ITEM && m.len > 4) {
                int32_t k;
                memcpy(&k, m.buf, 4);
                void *copy = malloc((size_t)m.len - 4);
                if (copy) memcpy(copy, m.buf + 4, (size_t)m.len - 4);
                mb_lock(r);
                r->mb.item = copy ? k : -1, r->mb.buf = copy, r->mb.len = (size_t)m.len - 4;
                mb_unlock(r);
            } else if (m.tag == TAG_STOP) {
                /* the end, or this rank was counted dead while only slow: its series is someone
                 * else's now, so the one in work (if any) is abandoned */
                stop = 1;
                r->skip_finalize = m.len >= 1 && m.buf[0];
                __atomic_store_n(&r->stop_scoring, 1, __ATOMIC_RELAXED);
            }
            free(m.buf);
        }
        /* OUTDIR must be the folder rank 0 writes into: a file system shared by the nodes (an NFS
         * client may take a while to see a new file: look again until the deadline) */
        if (start == 1) start = fs_exists(marker) ? 2 : now_s() > start_until ? -1 : 1;
        mb_lock(r);
        const int ready = r->mb.ready;
        char why[1024];
        snprintf(why, sizeof why, "%s", r->mb.why);
        int k = r->mb.result_item;
        if (k >= 0) {
            result_head h = {k, (int32_t)r->mb.result_state, r->mb.result_row != NULL, 0, r->mb.result_wall};
            const char *body = r->mb.result_row ? r->mb.result_row : r->mb.result_error;
            if (send_bytes(&w, 0, TAG_RESULT, &h, sizeof h, body, strlen(body))) {
                /* rank 0 must hear about every item it handed out, or it waits for ever */
                static const char lost_row[] = "its row could not be sent to rank 0 (out of memory, or over 1 GiB)";
                h.state = AAC_SCORE_FAILED, h.has_row = 0;
                send_bytes(&w, 0, TAG_RESULT, &h, sizeof h, lost_row, sizeof lost_row - 1);
            }
            free(r->mb.result_row);
            r->mb.result_row = NULL, r->mb.result_item = -1;
            busy = 1;
        }
        const int idle = r->mb.item < 0 && r->mb.result_item < 0;
        mb_unlock(r);
        if (!said && (start == 2 || start == -1) && ready) {
            char msg[1400];
            if (start < 0)
                snprintf(msg, sizeof msg, "%s is not the folder rank 0 writes into (its file %s is not there): OUTDIR "
                         "must be on a file system every node shares, at the same path", r->job->out_dir, marker);
            hello(r, &w, start < 0 ? -1 : ready, start < 0 ? msg : why);
            if (start < 0) say(r, "error", NULL, "%s", msg);
            said = 1;
        }
        if (said && idle && score_stop_requested() && !left) {
            /* out of the work, but still listening: the end (STOP) says how to leave MPI */
            hello(r, &w, -1, "stopped by a signal");
            left = 1;
        }
        if (now_s() - last_beat >= BEAT_S) {
            send_bytes(&w, 0, TAG_BEAT, NULL, 0, NULL, 0);
            last_beat = now_s();
        }
        if (!busy) nap(2000);
    }
    for (int i = 0; i < 50 && w.n_out; i++) { /* the last messages out, briefly */
        progress_sends(&w);
        nap(2000);
    }
    mb_lock(r);
    r->mb.stop = 1;
    r->rc = lost ? 1 : 0;
    if (lost) r->skip_finalize = 1;
    mb_unlock(r);
    return NULL;
}

/* ---------------------------------------------------------------- the coordinator */

enum { P_STARTING, P_READY, P_BUSY, P_GONE };
enum { I_OTHER, I_QUEUED, I_WORK, I_DONE }; /* I_OTHER: another shard's */

typedef struct peer {
    int state, item, died;
    double last, sent_at;
    long pid;
    int same_host, threads;
    char host[256];
} peer;

typedef struct coord {
    run *r;
    wire w;
    peer *peers;
    int n_items, total, done, cursor, stopping;
    int *order, *pos;         /* items of this run, largest first; position of each item */
    unsigned char *state, *tries;
    int *died_on;
    double t0, pack_s, transfer_s; /* distribution overhead: packing, and hand-out to result less the work */
    int transfers, deaths;
} coord;

static int by_slices(const void *pa, const void *pb, void *arg) {
    const aac_score_batch *b = arg;
    const int a = *(const int *)pa, c = *(const int *)pb;
    const int64_t sa = aac_score_batch_item(b, a)->slices, sc = aac_score_batch_item(b, c)->slices;
    if (sa != sc) return sa > sc ? -1 : 1;
    return (a > c) - (a < c);
}

static void write_summary(coord *c, int final) {
    aac_error e;
    if (aac_score_batch_write(c->r->batch, final, final && c->stopping, &e))
        say(c->r, "error", NULL, "cannot write the summary: %s", e.message);
}

/* Item k back in the queue, at its place by size. */
static void requeue(coord *c, int k) {
    c->state[k] = I_QUEUED;
    if (c->pos[k] < c->cursor) c->cursor = c->pos[k];
}

/* Item k's outcome from rank p (row_json NULL: failed, error says why). */
static void record(coord *c, int p, int k, aac_score_state state, const char *row_json, const char *error) {
    run *r = c->r;
    const aac_score_item *it = aac_score_batch_item(r->batch, k);
    if (state == AAC_SCORE_INTERRUPTED && !c->stopping && !score_stop_requested()) {
        requeue(c, k); /* that rank alone was stopped: another one scores it */
        return;
    }
    aac_error e = {0};
    json_error_t je;
    json_t *row = row_json ? json_loads(row_json, 0, &je) : NULL;
    if (row) {
        /* where it was scored: the fields a single-process row does not have */
        json_object_set_new(row, "rank", json_integer(p));
        json_object_set_new(row, "host", json_string(c->peers[p].host));
        aac_score_result res;
        memset(&res, 0, sizeof res);
        res.state = state;
        res.row_json = json_dumps(row, JSON_INDENT(2));
        if (!res.row_json || aac_score_batch_set_result(r->batch, k, &res, &e))
            aac_score_batch_set_failed(r->batch, k, "the row of this series was lost (out of memory)", NULL);
        free(res.row_json);
        json_decref(row);
    } else {
        char why[1400];
        snprintf(why, sizeof why, "%s (rank %d, %s)", error && error[0] ? error : "no row came back", p,
                 c->peers[p].host);
        aac_score_batch_set_failed(r->batch, k, why, NULL);
    }
    c->state[k] = I_DONE;
    c->done++;
    write_summary(c, 0);
    static const char *const names[] = {"done", "skipped (already done)", "failed", "interrupted"};
    say(r, "progress", it->name, "%d of %d: %s on rank %d (%s)", c->done, c->total,
        (unsigned)state < 4 ? names[state] : "?", p, c->peers[p].host);
}

/* Rank p is gone (dead: died = 1; unavailable or stopped: 0); its item goes to another rank,
 * once: an item two ranks died on is reported failed, not handed out a third time. */
static void drop_peer(coord *c, int p, int died, const char *why) {
    peer *q = &c->peers[p];
    const int k = q->state == P_BUSY ? q->item : -1;
    q->state = P_GONE, q->item = -1, q->died = died;
    c->deaths += died;
    forget_rank(&c->w, p);
    say(c->r, died ? "error" : "warning", NULL, "rank %d (%s, pid %ld) %s", p, q->host[0] ? q->host : "?", q->pid, why);
    if (k < 0) return;
    const aac_score_item *it = aac_score_batch_item(c->r->batch, k);
    if (died && ++c->tries[k] >= 2) {
        char msg[1200];
        snprintf(msg, sizeof msg, "rank %d (%.256s) died while scoring this series, after rank %d (%.256s) had died on it: "
                 "not handed out again", p, q->host, c->died_on[k], c->peers[c->died_on[k]].host);
        aac_score_batch_set_failed(c->r->batch, k, msg, NULL);
        c->state[k] = I_DONE;
        c->done++;
        write_summary(c, 0);
        return;
    }
    if (died) c->died_on[k] = p;
    requeue(c, k);
    say(c->r, "warning", it->name, "handed to another rank (rank %d %s)", p, died ? "died on it" : "left");
}

static void hand_out(coord *c, int p) {
    run *r = c->r;
    while (c->cursor < c->n_items && c->state[c->order[c->cursor]] != I_QUEUED) c->cursor++;
    if (c->cursor >= c->n_items) return;
    const int k = c->order[c->cursor];
    peer *q = &c->peers[p];
    if (p == 0) {
        mb_lock(r);
        r->mb.item = k;
        mb_unlock(r);
    } else {
        const double t = now_s();
        void *buf = NULL;
        size_t len = 0;
        aac_error e = {0};
        int32_t k32 = k;
        if (aac_score_batch_pack(r->batch, k, &buf, &len, &e) || send_bytes(&c->w, p, TAG_ITEM, &k32, 4, buf, len)) {
            free(buf);
            c->state[k] = I_WORK; /* record() counts it done */
            record(c, p, k, AAC_SCORE_FAILED, NULL, e.message[0] ? e.message : "could not be sent to the rank");
            return;
        }
        free(buf);
        c->pack_s += now_s() - t;
    }
    c->state[k] = I_WORK;
    q->state = P_BUSY, q->item = k, q->sent_at = now_s();
}

static void on_message(coord *c, in_msg *m) {
    const int p = m->source;
    if (p <= 0 || p >= c->r->size) return;
    peer *q = &c->peers[p];
    if (q->state == P_GONE && !q->died) return; /* it said it left */
    if (q->state == P_GONE) {
        /* a rank counted dead speaks again (it was only slow): its result is used if the item
         * still waits in the queue; either way it is told to stop */
        if (m->tag == TAG_RESULT && m->len >= (int)sizeof(result_head)) {
            result_head h;
            memcpy(&h, m->buf, sizeof h);
            if (h.item >= 0 && h.item < c->n_items && c->state[h.item] == I_QUEUED) {
                c->state[h.item] = I_WORK;
                record(c, p, h.item, (aac_score_state)h.state, h.has_row ? m->buf + sizeof h : NULL, m->buf + sizeof h);
            }
        }
        const char skip = 1; /* a rank was counted dead: nobody waits in MPI_Finalize */
        send_bytes(&c->w, p, TAG_STOP, &skip, 1, NULL, 0);
        return;
    }
    q->last = now_s();
    if (m->tag == TAG_HELLO) {
        json_error_t je;
        json_t *j = json_loads(m->buf, 0, &je);
        const int st = (int)json_integer_value(json_object_get(j, "state"));
        snprintf(q->host, sizeof q->host, "%s", json_string_value(json_object_get(j, "host")) ?
                 json_string_value(json_object_get(j, "host")) : "?");
        q->pid = (long)json_integer_value(json_object_get(j, "pid"));
        q->threads = (int)json_integer_value(json_object_get(j, "threads"));
        const char *boot = json_string_value(json_object_get(j, "boot"));
        q->same_host = !strcmp(q->host, c->r->host) && boot && !strcmp(boot, c->r->boot) && boot[0];
        if (st == 1 && q->state == P_STARTING) {
            q->state = P_READY;
            say(c->r, "note", NULL, "rank %d ready on %s (pid %ld, %d thread%s)", p, q->host, q->pid, q->threads,
                q->threads == 1 ? "" : "s");
        } else if (st < 0) {
            char why[1400];
            snprintf(why, sizeof why, "cannot score: %s", json_string_value(json_object_get(j, "error")));
            drop_peer(c, p, 0, why);
        }
        json_decref(j);
    } else if (m->tag == TAG_RESULT && m->len >= (int)sizeof(result_head)) {
        result_head h;
        memcpy(&h, m->buf, sizeof h);
        if (q->state == P_BUSY && q->item == h.item) {
            c->transfer_s += now_s() - q->sent_at - h.wall;
            c->transfers++;
            q->state = P_READY, q->item = -1;
            record(c, p, h.item, (aac_score_state)h.state, h.has_row ? m->buf + sizeof h : NULL, m->buf + sizeof h);
        }
    }
}

/* Signs of life: a rank on this machine whose process is gone is dead at once; any rank
 * silent for the timeout too. */
static void check_peers(coord *c, double t) {
    for (int p = 1; p < c->r->size; p++) {
        peer *q = &c->peers[p];
        if (q->state == P_GONE) continue;
        char why[200];
        if (q->same_host && q->pid > 0 && kill((pid_t)q->pid, 0) != 0 && errno == ESRCH) {
            drop_peer(c, p, 1, "died (its process is gone)");
        } else if (t - q->last > c->r->job->rank_timeout) {
            snprintf(why, sizeof why, "has been silent for %.0f s: counted as dead", t - q->last);
            drop_peer(c, p, 1, why);
        }
    }
}

static int start_work(coord *c) {
    run *r = c->r;
    const int n = aac_score_batch_count(r->batch);
    c->n_items = 0;
    c->order = malloc(sizeof(int) * (size_t)(n + 1));
    c->pos = malloc(sizeof(int) * (size_t)(n + 1));
    c->state = calloc((size_t)n + 1, 1);
    c->tries = calloc((size_t)n + 1, 1);
    c->died_on = calloc((size_t)n + 1, sizeof(int));
    if (!c->order || !c->pos || !c->state || !c->tries || !c->died_on) return -1;
    for (int k = 0; k < n; k++)
        if (aac_score_batch_mine(r->batch, k)) c->order[c->n_items++] = k, c->state[k] = I_QUEUED;
    qsort_r(c->order, (size_t)c->n_items, sizeof(int), by_slices, r->batch);
    for (int i = 0; i < c->n_items; i++) c->pos[c->order[i]] = i;
    c->total = c->n_items;
    c->t0 = now_s();
    int64_t slices = 0;
    for (int i = 0; i < c->n_items; i++) slices += aac_score_batch_item(r->batch, c->order[i])->slices;
    say(r, "note", NULL, "%d series (%lld slices) for %d ranks, largest first", c->total, (long long)slices, r->size);
    write_summary(c, 0);
    return 0;
}

static void *coordinator(void *arg) {
    run *r = arg;
    coord c;
    memset(&c, 0, sizeof c);
    c.r = r;
    int work = 0;
    c.peers = calloc((size_t)r->size, sizeof *c.peers);
    char marker[4400];
    unsigned rnd = (unsigned)getpid() * 2654435761u ^ (unsigned)(now_s() * 1e6);
    snprintf(marker, sizeof marker, "%s/.aaclip-mpi-%ld-%08x", r->job->out_dir, (long)getpid(), rnd);
    aac_error e = {0};
    if (!c.peers || fs_mkdirs(r->job->out_dir) || fs_write_atomic(marker, "aaclip mpi run\n", 15, &e)) {
        say(r, "error", NULL, "%s: cannot create the output folder: %s", r->job->out_dir, e.message);
        r->rc = 1;
        marker[0] = '\0';
        goto finish;
    }
    snprintf(c.peers[0].host, sizeof c.peers[0].host, "%s", r->host);
    for (int p = 1; p < r->size; p++) {
        c.peers[p].last = now_s(), c.peers[p].item = -1;
        send_bytes(&c.w, p, TAG_START, marker, strlen(marker) + 1, NULL, 0);
    }
    c.peers[0].item = -1;
    double last_beat = now_s(), last_check = now_s(), last_loop = now_s();
    for (;;) {
        int busy = 0;
        /* a stall of this process (stopped, starved) is not the other ranks' silence: the time
         * is taken once per turn, and silence judged on it before anything else can stall */
        const double now = now_s();
        if (now - last_loop > 1.0)
            for (int p = 1; p < r->size; p++) c.peers[p].last += now - last_loop;
        last_loop = now;
        if (now - last_check >= CHECK_S) check_peers(&c, now), last_check = now;
        progress_sends(&c.w);
        in_msg m;
        while (next_message(&c.w, &m)) {
            on_message(&c, &m);
            free(m.buf);
            busy = 1;
        }
        /* this rank's own scorer */
        mb_lock(r);
        const int ready = r->mb.ready;
        char why[1024];
        snprintf(why, sizeof why, "%s", r->mb.why);
        int k = r->mb.result_item;
        aac_score_state st = r->mb.result_state;
        char *row = r->mb.result_row, err_text[1024];
        snprintf(err_text, sizeof err_text, "%s", r->mb.result_error);
        r->mb.result_row = NULL, r->mb.result_item = -1;
        mb_unlock(r);
        if (ready < 0) {
            say(r, "error", NULL, "%s", why);
            r->rc = 1;
            break;
        }
        if (ready == 1 && !work) {
            if (start_work(&c)) {
                say(r, "error", NULL, "out of memory");
                r->rc = 1;
                break;
            }
            work = 1, c.peers[0].state = P_READY;
        }
        if (k >= 0) {
            c.peers[0].state = P_READY, c.peers[0].item = -1;
            record(&c, 0, k, st, row, err_text);
            busy = 1;
        }
        free(row);
        if (score_stop_requested() && !c.stopping) {
            c.stopping = 1;
            say(r, "warning", NULL, "stopping: no more series handed out; the ones in work end as interrupted");
        }
        /* the test of a rank's death starts once every rank is ready, so the rank that is to
         * die surely gets a series (AACLIP_TEST_KILL_RANK, see scoring_loop) */
        int starting = 0;
        for (int p = 1; p < r->size && getenv("AACLIP_TEST_KILL_RANK"); p++) starting += c.peers[p].state == P_STARTING;
        if (work && !c.stopping && !starting)
            for (int p = 0; p < r->size; p++)
                if (c.peers[p].state == P_READY) hand_out(&c, p), busy = 1;
        const double t = now_s();
        if (t - last_beat >= BEAT_S) {
            for (int p = 1; p < r->size; p++)
                if (c.peers[p].state != P_GONE) send_bytes(&c.w, p, TAG_BEAT, NULL, 0, NULL, 0);
            last_beat = t;
        }
        int in_work = 0;
        for (int p = 0; p < r->size; p++) in_work += c.peers[p].state == P_BUSY;
        if (work && (c.done == c.total || (c.stopping && !in_work))) break;
        if (c.stopping && !work) break;
        if (!busy) nap(2000);
    }
finish:
    if (work) {
        write_summary(&c, 1);
        aac_score_counts n;
        aac_score_batch_counts(r->batch, c.stopping, &n);
        const double secs = now_s() - c.t0;
        char where[64] = "summary.json";
        if (r->job->sp.shards)
            snprintf(where, sizeof where, "shards/%d-of-%d/summary.json", r->job->sp.shard, r->job->sp.shards);
        if (!r->job->log.quiet)
            fprintf(stderr, "aaclip: %d series scored, %d skipped (already done), %d failed%s; summary: %s/%s; %d ranks "
                            "(%d died), %.1f s, %.2f series per minute; distribution: %.1f ms per series handed out "
                            "(packing %.1f, transfer and waiting %.1f)\n",
                    n.done, n.skipped, n.failed, n.interrupted ? ", interrupted" : "", r->job->out_dir, where, r->size,
                    c.deaths, secs,
                    secs > 0 ? 60.0 * c.done / secs : 0,
                    c.transfers ? 1e3 * (c.pack_s + c.transfer_s) / c.transfers : 0,
                    c.transfers ? 1e3 * c.pack_s / c.transfers : 0, c.transfers ? 1e3 * c.transfer_s / c.transfers : 0);
        if (!r->rc) r->rc = n.failed || n.interrupted ? 1 : 0;
    }
    /* Open MPI 4.1's MPI_Finalize can wait for ever for a rank that died (its fence is
     * collective): after a death every rank leaves without it */
    r->skip_finalize = c.deaths > 0;
    const char skip = (char)r->skip_finalize;
    for (int p = 1; p < r->size; p++) /* the ranks that could not score wait for this too */
        if (!c.peers || !c.peers[p].died) send_bytes(&c.w, p, TAG_STOP, &skip, 1, NULL, 0);
    for (int i = 0; i < 500 && c.w.n_out; i++) { /* the STOPs out; a dead rank's never complete */
        progress_sends(&c.w);
        nap(2000);
    }
    if (marker[0]) unlink(marker);
    mb_lock(r);
    r->mb.stop = 1;
    mb_unlock(r);
    free(c.peers), free(c.order), free(c.pos), free(c.state), free(c.tries), free(c.died_on);
    return NULL;
}

/* ---------------------------------------------------------------- the run */

int score_mpi(score_job *job) {
    int provided = 0, rc = 1;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "aaclip score: MPI could not be initialised\n");
        return 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    run r;
    memset(&r, 0, sizeof r);
    r.job = job;
    MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &r.size);
    if (r.size == 1) { /* a launcher with one process: the ordinary run */
        MPI_Finalize();
        return score_single(job);
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        if (r.rank == 0) fprintf(stderr, "aaclip score: this MPI library does not allow MPI calls from a second thread\n");
        MPI_Finalize();
        return 1;
    }
    const int local = local_ranks();
    r.threads = rank_threads(job->mo.params.n_threads, local);
    gethostname(r.host, sizeof r.host - 1);
    read_machine_id(r.boot, sizeof r.boot);
    const char *recovery = getenv("OMPI_MCA_orte_enable_recovery");
    if (r.rank == 0 && getenv("OMPI_COMM_WORLD_SIZE") && !(recovery && !strcmp(recovery, "1")) && !job->log.quiet)
        say(&r, "note", NULL, "mpirun without --enable-recovery: if a rank dies, Open MPI stops the whole job (the "
            "series finished stay; run again to finish)");
    say(&r, "note", NULL, "%s, %d thread%s, %d rank%s on this node", r.host, r.threads, r.threads == 1 ? "" : "s", local,
        local == 1 ? "" : "s");
    pthread_mutex_init(&r.mb.mu, NULL);
    pthread_cond_init(&r.mb.cv, NULL);
    r.mb.item = -1, r.mb.result_item = -1;
    score_catch_signals();
    pthread_t t;
    if (pthread_create(&t, NULL, r.rank == 0 ? coordinator : worker, &r)) {
        fprintf(stderr, "aaclip score: cannot start a thread\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    scoring_loop(&r);
    pthread_join(t, NULL);
    aac_score_batch_free(r.batch);
    pthread_cond_destroy(&r.mb.cv);
    pthread_mutex_destroy(&r.mb.mu);
    rc = r.rc;
    if (r.skip_finalize) { /* see the coordinator's end; mpirun --enable-recovery accepts this */
        fflush(stdout), fflush(stderr);
        _exit(rc);
    }
    MPI_Finalize();
    return rc;
}
