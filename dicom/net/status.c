/* status.c - SPOOL/status.json: what the node is doing (associations, studies receiving, the
 * queue, the running job, counts, the last errors), rewritten atomically so a monitor never
 * reads half a file. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "node_internal.h"

void node_write_status(aac_node *n) {
    spool *sp = &n->sp;
    char now[32];
    net_utc(now);
    json_t *o = json_object();
    json_object_set_new(o, "aet", json_string(n->aet));
    json_object_set_new(o, "port", json_integer(n->p.port));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "started", json_string(n->started));
    json_object_set_new(o, "updated", json_string(now));
    json_object_set_new(o, "destination", n->has_dest ? json_string(n->dest_str) : json_null());
    json_object_set_new(o, "stopping", json_boolean(n->stop != 0));
    json_object_set_new(o, "associations", json_integer(n->scp ? net_scp_active(n->scp) : 0));
    pthread_mutex_lock(&sp->mu);
    json_t *studies = json_array(), *queue = json_array(), *running = json_null();
    const double t = net_now();
    for (int i = 0; i < sp->n_studies; i++)
        json_array_append_new(studies, json_pack("{s:s, s:i, s:f}", "study", sp->studies[i].uid, "instances",
                                                 sp->studies[i].instances, "idle_s", t - sp->studies[i].last));
    for (int i = 0; i < sp->n_jobs; i++) {
        const job *j = &sp->jobs[i];
        json_t *e = json_pack("{s:I, s:s, s:s, s:s, s:i}", "id", (json_int_t)j->id, "state", job_state_name(j->state),
                              "study", j->study, "series", j->series, "delivery_attempts", j->attempts);
        if (j->id == sp->running_id) running = json_incref(e);
        json_array_append_new(queue, e);
    }
    json_object_set_new(o, "studies_receiving", studies);
    json_object_set_new(o, "queue", queue);
    json_object_set_new(o, "running", running);
    json_object_set_new(o, "counts", json_pack("{s:I, s:I, s:I, s:I, s:I, s:i}", "received", (json_int_t)sp->received,
                                               "refused", (json_int_t)sp->refused, "jobs_done", (json_int_t)sp->done,
                                               "jobs_failed", (json_int_t)sp->failed, "jobs_superseded",
                                               (json_int_t)sp->superseded, "series_pending", sp->n_pending));
    pthread_mutex_unlock(&sp->mu);
    json_t *errs = json_array();
    pthread_mutex_lock(&n->log_mu);
    for (int i = 0; i < n->n_errors; i++) json_array_append_new(errs, json_string(n->errors[i]));
    pthread_mutex_unlock(&n->log_mu);
    json_object_set_new(o, "last_errors", errs);
    if (n->pool) {
        net_pool_info pi;
        net_pool_stats(n->pool, &pi);
        json_object_set_new(o, "receive_pool",
                            json_pack("{s:i, s:I, s:I, s:I, s:I}", "files", pi.files, "bytes", (json_int_t)pi.bytes,
                                      "file_size", (json_int_t)pi.slot, "received_into", (json_int_t)pi.taken,
                                      "received_without", (json_int_t)pi.missed));
    }
    char *text = json_dumps(o, JSON_INDENT(1));
    json_decref(o);
    if (!text) return;
    char *path = fs_join(n->spool_dir, "status.json");
    if (path) fs_write_atomic(path, text, strlen(text), NULL);
    free(path);
    free(text);
}
