/* node.c - `aaclip serve` as a library: the acceptor stores instances into the spool (checked,
 * durable before the response), a clock thread closes idle studies into jobs and rewrites
 * status.json, the worker scores and delivers. Stopping: the acceptor stops accepting and ends
 * its associations after the message in work, the worker after its step. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "node_internal.h"

aac_node_params aac_node_default_params(void) {
    aac_node_params p;
    memset(&p, 0, sizeof p);
    p.aet = "AACLIP";
    p.port = 11112;
    p.study_idle_s = 30;
    p.send_formats = AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR;
    p.max_associations = 16;
    p.max_pdu = 131072;
    p.max_instance_bytes = (int64_t)2 << 30;
    p.min_free_bytes = (int64_t)1 << 30;
    p.receive_pool_bytes = (int64_t)256 << 20;
    p.timeout_s = 30;
    p.retry_min_s = 2;
    p.retry_max_s = 300;
    return p;
}

void node_log(void *user, const char *event, const char *subject, const char *message) {
    aac_node *n = user;
    pthread_mutex_lock(&n->log_mu);
    if (!strcmp(event, "error") || !strcmp(event, "refused")) {
        if (n->n_errors == NODE_ERRORS) {
            memmove(n->errors[0], n->errors[1], sizeof n->errors[0] * (NODE_ERRORS - 1));
            n->n_errors--;
        }
        char t[32];
        net_utc(t);
        snprintf(n->errors[n->n_errors++], sizeof n->errors[0], "%s %s%s%.600s", t, subject ? subject : "",
                 subject && subject[0] ? ": " : "", message);
        n->status_dirty = 1;
    }
    if (n->p.log) n->p.log(n->p.user, event, subject, message);
    pthread_mutex_unlock(&n->log_mu);
}

static int node_should_stop(void *user) { return ((aac_node *)user)->stop != 0; }

static int64_t spool_free(const aac_node *n) {
    struct statvfs v;
    return statvfs(n->spool_dir, &v) ? -1 : (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

/* Disk nearly full: refuse before receiving ("out of resources", the sender retries later),
 * after the receive pool's files, the first space to give back. */
static int node_admit(void *user) {
    aac_node *n = user;
    if (n->p.min_free_bytes <= 0) return 0;
    int64_t avail = spool_free(n);
    if (avail >= 0 && avail < n->p.min_free_bytes && n->pool) {
        net_pool_give_back(n->pool);
        avail = spool_free(n);
    }
    if (avail >= 0 && avail < n->p.min_free_bytes) {
        node_log(n, "refused", "", "spool disk nearly full: C-STORE refused (out of resources)");
        return NET_STATUS_OUT_OF_RESOURCES;
    }
    return 0;
}

/* The instance's flush runs on its own thread beside the checks: on a disk with a volatile
 * write cache and no FUA, the flush is a device round trip the header reading need not wait
 * for, and a synchronous sender waits for both before it sends the next instance. fdatasync:
 * in a pool file of unchanged size it writes the data only (the renames changed the inode's
 * times, which a full fsync would write too); in a new file it writes the size and, on ext4,
 * the folder entry as well. */
typedef struct flush_job {
    int fd, err;
    pthread_t thread;
    int running;
} flush_job;

static void *flush_main(void *arg) {
    flush_job *j = arg;
    j->err = fdatasync(j->fd) ? errno : 0;
    return NULL;
}

static void flush_begin(flush_job *j, const char *path) {
    j->err = 0, j->running = 0;
    j->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (j->fd < 0) {
        j->err = errno;
        return;
    }
    if (pthread_create(&j->thread, NULL, flush_main, j) == 0) j->running = 1;
    else flush_main(j); /* no thread: flush here */
}

/* 0 when the file is on disk, else the errno */
static int flush_end(flush_job *j) {
    if (j->running) pthread_join(j->thread, NULL);
    if (j->fd >= 0) close(j->fd);
    j->fd = -1, j->running = 0;
    return j->err;
}

/* An instance not kept: its file removed, the reason in the response's comment and the log
 * ("refused: instance refused: ..." or "error: cannot spool: ..."). */
static int store_fail(aac_node *n, const char *tmp, const char *sop_uid, int status, const char *why, char *comment,
                      size_t cap) {
    fs_discard(tmp);
    snprintf(comment, cap, "%s", why);
    spool_receive_end(&n->sp, "", 0);
    const int refused = status != NET_STATUS_OUT_OF_RESOURCES;
    net_logf(node_log, n, refused ? "refused" : "error", sop_uid, "%s: %s",
             refused ? "instance refused" : "cannot spool", why);
    return status;
}

static int node_store(void *user, const char *tmp, int64_t length, int64_t padding, const char *sop_class,
                      const char *sop_uid, char *comment, size_t cap) {
    aac_node *n = user;
    net_instance in;
    aac_error e = {0};
    char why[600];
    flush_job fj;
    flush_begin(&fj, tmp);
    if (net_instance_check(tmp, sop_uid, 0, &in, &e)) {
        flush_end(&fj);
        return store_fail(n, tmp, sop_uid, NET_STATUS_CANNOT_UNDERSTAND, e.message, comment, cap);
    }
    if (strcmp(in.sop_class, sop_class)) {
        flush_end(&fj);
        snprintf(why, sizeof why, "dataset SOP class %s, C-STORE names %s", in.sop_class, sop_class);
        return store_fail(n, tmp, sop_uid, NET_STATUS_SOP_CLASS_MISMATCH, why, comment, cap);
    }
    /* In a pool file the data is followed by our padding, which a dataset cut short (its last
     * element longer than what was sent) would take for its own bytes: the padding must be
     * whole and last. */
    if (padding > 0 && in.trailing_padding != padding) {
        flush_end(&fj);
        return store_fail(n, tmp, sop_uid, NET_STATUS_CANNOT_UNDERSTAND,
                          "the dataset ends before its last element does (premature end of the data)", comment, cap);
    }
    const int flush_err = flush_end(&fj);
    if (flush_err) {
        snprintf(why, sizeof why, "cannot flush the instance to disk: %s", strerror(flush_err));
        return store_fail(n, tmp, sop_uid, NET_STATUS_OUT_OF_RESOURCES, why, comment, cap);
    }
    /* The data is durable with the pool file's padding; without it from now on (not synced:
     * either size is a valid file, and a restart cuts it by the receive record). */
    if (padding > 0 && truncate(tmp, length)) net_logf(node_log, n, "note", sop_uid, "padding of %s left: %s", tmp, strerror(errno));
    if (spool_receive_begin(&n->sp, &in, &e))
        return store_fail(n, tmp, sop_uid, NET_STATUS_OUT_OF_RESOURCES, e.message, comment, cap);
    const aac_status s = net_instance_commit(tmp, n->sp.incoming, &in, 0, 1, &e);
    spool_receive_end(&n->sp, in.study_uid, s == AAC_OK);
    n->status_dirty = 1;
    if (s) {
        snprintf(comment, cap, "%s", e.message);
        net_logf(node_log, n, "error", sop_uid, "cannot spool: %s", e.message);
        return NET_STATUS_OUT_OF_RESOURCES;
    }
    return NET_STATUS_SUCCESS;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

aac_status aac_node_open(const aac_node_params *p, aac_node **out, aac_error *err) {
    *out = NULL;
    if (!p->spool || !p->spool[0]) return aac_fail(err, AAC_ERR_ARG, "a spool folder is required");
    if (!p->open_scorer) return aac_fail(err, AAC_ERR_ARG, "open_scorer is required");
    if (!aac_net_aet_valid(p->aet)) return aac_fail(err, AAC_ERR_ARG, "'%s' is not a valid AE title", p->aet ? p->aet : "");
    if (p->port < 1 || p->port > 65535) return aac_fail(err, AAC_ERR_ARG, "port %d is not in 1..65535", p->port);
    if (!(p->study_idle_s >= 0)) return aac_fail(err, AAC_ERR_ARG, "the study idle time must be >= 0");
    if (!(p->send_formats & (AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR)))
        return aac_fail(err, AAC_ERR_ARG, "nothing to send: choose among seg, pmap, sr");
    aac_status s = net_allow_check(p->allow, err);
    if (s) return s;
    aac_node *n = calloc(1, sizeof *n);
    if (!n) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    n->p = *p;
    n->aet = strdup(p->aet);
    n->bind = dup_or_null(p->bind);
    n->spool_dir = strdup(p->spool);
    n->allow = dup_or_null(p->allow);
    n->dest_str = dup_or_null(p->destination);
    pthread_mutex_init(&n->log_mu, NULL);
    net_utc(n->started);
    if (!n->p.retry_min_s || n->p.retry_min_s < 0) n->p.retry_min_s = 2;
    if (n->p.retry_max_s < n->p.retry_min_s) n->p.retry_max_s = n->p.retry_min_s;
    if (n->p.timeout_s <= 0) n->p.timeout_s = 30;
    if (!n->aet || !n->spool_dir) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s && p->destination) {
        s = aac_net_peer_parse(p->destination, &n->dest, err);
        n->has_dest = !s;
    }
    if (!s && fs_mkdirs(n->spool_dir)) s = aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", n->spool_dir, strerror(errno));
    if (!s) s = spool_open(n->spool_dir, &n->sp, node_log, n, err);
    if (!s) s = net_pool_open(n->sp.tmp, p->receive_pool_bytes, p->min_free_bytes, &n->pool, err);
    if (!s) {
        net_scp_params sp = {0};
        sp.aet = n->aet, sp.bind = n->bind, sp.port = p->port;
        sp.max_associations = p->max_associations, sp.max_pdu = p->max_pdu, sp.timeout_s = n->p.timeout_s;
        sp.allow = n->allow, sp.tls = p->tls, sp.tmp_dir = n->sp.tmp;
        sp.max_instance_bytes = p->max_instance_bytes;
        sp.pool = n->pool, sp.seal = 1;
        sp.admit = node_admit, sp.store = node_store, sp.should_stop = node_should_stop;
        sp.log = node_log, sp.user = n;
        s = net_scp_open(&sp, &n->scp, err);
    }
    if (s) {
        aac_node_free(n);
        return s;
    }
    *out = n;
    return AAC_OK;
}

static void *clock_main(void *arg) {
    aac_node *n = arg;
    double last_status = 0;
    while (!n->stop) {
        if (spool_close_idle(&n->sp, n->p.study_idle_s, node_log, n)) n->status_dirty = 1;
        const double t = net_now();
        if (n->status_dirty && t - last_status >= 1.0) {
            n->status_dirty = 0;
            last_status = t;
            node_write_status(n);
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* The receive pool is filled while nothing arrives (its writes and flushes would queue before
 * an instance's flush on the same disk) and the fill stops when an instance comes. */
static int pool_busy(void *user) {
    aac_node *n = user;
    return n->stop || node_receiving(n, 0.5);
}

static void *pool_main(void *arg) {
    aac_node *n = arg;
    while (!n->stop) {
        if (!node_receiving(n, 1.0) && net_pool_fill(n->pool, pool_busy, n) > 0) n->status_dirty = 1;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

aac_status aac_node_run(aac_node *n, aac_error *err) {
    pthread_t worker, clock, pool;
    if (pthread_create(&worker, NULL, node_worker, n))
        return aac_fail(err, AAC_ERR_NOMEM, "cannot start the worker thread");
    if (pthread_create(&clock, NULL, clock_main, n)) {
        aac_node_stop(n);
        pthread_join(worker, NULL);
        return aac_fail(err, AAC_ERR_NOMEM, "cannot start the clock thread");
    }
    const int has_pool = n->pool && pthread_create(&pool, NULL, pool_main, n) == 0;
    net_logf(node_log, n, "note", "", "listening as %s on %s:%d, spool %s, %s", n->aet, n->bind ? n->bind : "*",
             n->p.port, n->spool_dir, n->has_dest ? n->dest_str : "results kept in the spool (no destination)");
    node_write_status(n);
    net_scp_serve(n->scp); /* until stop */
    pthread_mutex_lock(&n->sp.mu);
    pthread_cond_broadcast(&n->sp.cv);
    pthread_mutex_unlock(&n->sp.mu);
    pthread_join(worker, NULL);
    pthread_join(clock, NULL);
    if (has_pool) pthread_join(pool, NULL);
    node_write_status(n);
    if (n->fatal) return aac_fail(err, AAC_ERR_IO, "%s", n->fatal_msg);
    node_log(n, "note", "", "stopped");
    return AAC_OK;
}

int node_receiving(aac_node *n, double within_s) {
    if (n->stop) return 0;
    int busy = 0;
    pthread_mutex_lock(&n->sp.mu);
    const double now = net_now();
    for (int i = 0; i < n->sp.n_studies && !busy; i++)
        busy = n->sp.studies[i].active > 0 || now - n->sp.studies[i].last < within_s;
    pthread_mutex_unlock(&n->sp.mu);
    return busy;
}

void aac_node_stop(aac_node *n) {
    if (n) n->stop = 1;
}

void aac_node_free(aac_node *n) {
    if (!n) return;
    net_scp_free(n->scp);
    net_pool_free(n->pool);
    if (n->sp.dir) spool_close(&n->sp);
    pthread_mutex_destroy(&n->log_mu);
    free(n->aet), free(n->bind), free(n->spool_dir), free(n->allow), free(n->dest_str);
    free(n);
}
