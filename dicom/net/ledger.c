/* ledger.c - the SOP Instance UIDs a peer has acknowledged, in a JSON file rewritten
 * atomically (fs_write_atomic) after each one: a sender stopped at any moment sends nothing
 * twice that was acknowledged. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "net_internal.h"

struct aac_ledger {
    char *path;
    char **uids;
    int n, cap;
};

static int add_uid(aac_ledger *l, const char *uid) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **u = realloc(l->uids, (size_t)cap * sizeof *u);
        if (!u) return -1;
        l->uids = u, l->cap = cap;
    }
    if (!(l->uids[l->n] = strdup(uid))) return -1;
    l->n++;
    return 0;
}

aac_status aac_ledger_open(const char *path, aac_ledger **out, aac_error *err) {
    *out = NULL;
    aac_ledger *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) return free(l), aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (fs_exists(path)) {
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je);
        json_t *arr = root ? json_object_get(root, "acknowledged") : NULL;
        if (!json_is_array(arr)) {
            json_decref(root);
            aac_ledger_free(l);
            return aac_fail(err, AAC_ERR_FORMAT, "%s: not a ledger of acknowledged instances (%s)", path,
                            root ? "no \"acknowledged\" list" : je.text);
        }
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            if (json_is_string(v) && add_uid(l, json_string_value(v))) {
                json_decref(root);
                aac_ledger_free(l);
                return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
            }
        }
        json_decref(root);
    }
    *out = l;
    return AAC_OK;
}

int aac_ledger_has(const aac_ledger *l, const char *sop_uid) {
    for (int i = 0; l && i < l->n; i++)
        if (!strcmp(l->uids[i], sop_uid)) return 1;
    return 0;
}

int aac_ledger_count(const aac_ledger *l) { return l ? l->n : 0; }

aac_status aac_ledger_add(aac_ledger *l, const char *sop_uid, aac_error *err) {
    if (aac_ledger_has(l, sop_uid)) return AAC_OK;
    if (add_uid(l, sop_uid)) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    json_t *arr = json_array();
    for (int i = 0; arr && i < l->n; i++) json_array_append_new(arr, json_string(l->uids[i]));
    json_t *root = json_pack("{s:o}", "acknowledged", arr);
    char *text = root ? json_dumps(root, JSON_INDENT(1)) : NULL;
    json_decref(root);
    if (!text) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    aac_status s = fs_write_atomic(l->path, text, strlen(text), err);
    free(text);
    return s;
}

void aac_ledger_free(aac_ledger *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) free(l->uids[i]);
    free(l->uids);
    free(l->path);
    free(l);
}
