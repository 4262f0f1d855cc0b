/* job.c - a job's state file, SPOOL/jobs/<id>.json, read and rewritten atomically. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "node_internal.h"

static const char *const k_states[] = {"queued", "running", "scored", "done", "superseded", "failed"};

const char *job_state_name(job_state s) {
    return (unsigned)s < sizeof k_states / sizeof k_states[0] ? k_states[s] : "unknown";
}

void job_path(const char *jobs_dir, long id, const char *suffix, char *out, size_t cap) {
    snprintf(out, cap, "%s/%010ld%s", jobs_dir, id, suffix);
}

static void copy_str(json_t *o, const char *key, char *dst, size_t cap) {
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, cap, "%s", v ? v : "");
}

aac_status job_add_result(job *j, const char *rel, aac_error *err) {
    char **r = realloc(j->results, (size_t)(j->n_results + 1) * sizeof *r);
    if (!r) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    j->results = r;
    if (!(r[j->n_results] = strdup(rel))) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    j->n_results++;
    return AAC_OK;
}

aac_status job_read(const char *path, long id, job *j, aac_error *err) {
    memset(j, 0, sizeof *j);
    j->id = id;
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: not a job file (%s)", path, je.text);
    }
    copy_str(o, "study", j->study, sizeof j->study);
    copy_str(o, "series", j->series, sizeof j->series);
    copy_str(o, "patient", j->patient, sizeof j->patient);
    copy_str(o, "created", j->created, sizeof j->created);
    copy_str(o, "finished", j->finished, sizeof j->finished);
    copy_str(o, "error", j->error, sizeof j->error);
    const char *st = json_string_value(json_object_get(o, "state"));
    j->state = (job_state)-1;
    for (size_t i = 0; st && i < sizeof k_states / sizeof k_states[0]; i++)
        if (!strcmp(st, k_states[i])) j->state = (job_state)i;
    j->sent = (int)json_integer_value(json_object_get(o, "sent"));
    j->refused = (int)json_integer_value(json_object_get(o, "refused"));
    json_t *res = json_object_get(o, "results"), *v;
    size_t i;
    aac_status s = AAC_OK;
    json_array_foreach(res, i, v) {
        if (!s && json_is_string(v)) s = job_add_result(j, json_string_value(v), err);
    }
    json_decref(o);
    if (s) return job_free(j), s;
    if ((int)j->state < 0 || !aac_net_uid_valid(j->study) || !aac_net_uid_valid(j->series)) {
        job_free(j);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: job file without a valid state, study and series", path);
    }
    return AAC_OK;
}

/* JSON strings are UTF-8; a Latin-1 patient ID or a message quoting one is not: keep ASCII. */
static const char *ascii(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++) buf[n++] = (unsigned char)*s < 0x80 ? *s : '?';
    buf[n] = '\0';
    return buf;
}

aac_status job_write(const char *jobs_dir, const job *j, aac_error *err) {
    char b1[AAC_LO_LEN], b2[sizeof j->error];
    json_t *res = json_array();
    for (int i = 0; res && i < j->n_results; i++) json_array_append_new(res, json_string(j->results[i]));
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:i}", "id", (json_int_t)j->id, "state",
                          job_state_name(j->state), "study", j->study, "series", j->series, "patient",
                          ascii(j->patient, b1, sizeof b1),
                          "created", j->created, "results", res, "sent", j->sent, "refused", j->refused);
    if (o && j->finished[0]) json_object_set_new(o, "finished", json_string(j->finished));
    if (o && j->error[0]) json_object_set_new(o, "error", json_string(ascii(j->error, b2, sizeof b2)));
    char *text = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
    json_decref(o);
    if (!text) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    char path[4200];
    job_path(jobs_dir, j->id, ".json", path, sizeof path);
    aac_status s = fs_write_atomic(path, text, strlen(text), err);
    free(text);
    return s;
}

void job_free(job *j) {
    for (int i = 0; i < j->n_results; i++) free(j->results[i]);
    free(j->results);
    j->results = NULL;
    j->n_results = 0;
}
