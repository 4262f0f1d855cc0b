/* test_score_batch.c - a batch in parts (aaclip_score.h, aac_score_batch_*): its items are
 * what aac_score_paths scores, in its order; items scored out of order, here or from their
 * packed bytes (what an MPI rank gets), give the single-process summary row for row and the
 * same maps byte for byte; a failed item has an honest row; the split into shards is a
 * partition balanced by slices that does not depend on how the root is spelt; two shard runs
 * merge into the single-process summary (the last shard to finish merges), a missing shard
 * shows as "not scored", shards of other inputs are refused.
 * Model: the bundled demo model; data: phantom studies of different sizes (each with its
 * lesion mask, a NIfTI volume) and a picture. */
#include "dicom_test.h"

#include <jansson.h>
#include <unistd.h>

#include "aaclip_score.h"
#include "aaclip_synth.h"

typedef struct recorder {
    int notes, merged;
} recorder;

static void on_log(void *u, aac_score_event ev, const char *series, const char *msg) {
    (void)series;
    recorder *r = u;
    r->notes += ev == AAC_EVENT_NOTE;
    r->merged += ev == AAC_EVENT_NOTE && strstr(msg, "summary.json merged") != NULL;
}

static json_t *load_summary(const char *root) {
    char p[4200];
    snprintf(p, sizeof p, "%s/summary.json", root);
    json_t *s = json_load_file(p, 0, NULL);
    CHECK(s != NULL, "cannot read %s", p);
    return s;
}

/* A row without what may differ between runs: timings, where it ran, the results root. */
static json_t *comparable(json_t *row, const char *root) {
    json_t *c = json_deep_copy(row);
    json_object_del(c, "seconds"), json_object_del(c, "host"), json_object_del(c, "shard"), json_object_del(c, "rank");
    const char *d = json_string_value(json_object_get(c, "output_dir"));
    if (d && !strncmp(d, root, strlen(root))) json_object_set_new(c, "output_dir", json_string(d + strlen(root)));
    return c;
}

/* Rows equal but for timings and root; the same anomaly maps, byte for byte. */
static void check_same_summary(json_t *a, const char *root_a, json_t *b, const char *root_b, const char *what) {
    json_t *ra = json_object_get(a, "series"), *rb = json_object_get(b, "series");
    CHECK(json_array_size(ra) == json_array_size(rb), "%s: %zu rows, %zu expected", what, json_array_size(rb),
          json_array_size(ra));
    for (size_t i = 0; i < json_array_size(ra) && i < json_array_size(rb); i++) {
        json_t *x = comparable(json_array_get(ra, i), root_a), *y = comparable(json_array_get(rb, i), root_b);
        CHECK(json_equal(x, y), "%s: row %zu differs (%s / %s)", what, i,
              json_string_value(json_object_get(x, "output_dir")), json_string_value(json_object_get(y, "output_dir")));
        const char *dir = json_string_value(json_object_get(x, "output_dir"));
        if (dir && !strcmp(json_string_value(json_object_get(x, "status")), "done"))
            CHECK(dt_run("cmp -s '%s%s/anomaly_map.nii.gz' '%s%s/anomaly_map.nii.gz'", root_a, dir, root_b, dir) == 0,
                  "%s: anomaly map of %s differs", what, dir);
        json_decref(x), json_decref(y);
    }
    CHECK(json_equal(json_object_get(a, "skipped_files"), json_object_get(b, "skipped_files")), "%s: notes differ", what);
}

int main(void) {
    aac_error e = {0};
    const char *bundle = DT_DEMO_MODEL;
    aac_model *m;
    aac_tokenizer *tok;
    dt_open_demo(&m, &tok);

    /* three small studies of 2, 3 and 5 slices, each with its mask volume, and a picture */
    const char *data = dt_scratch("batch_data");
    const int slices[3] = {2, 3, 5};
    for (int i = 0; i < 3; i++) {
        aac_ct_phantom_params pp = aac_ct_phantom_default_params();
        pp.size = 64, pp.slices = slices[i], pp.n_lesions = 0, pp.fov_mm = 320, pp.slice_mm = 5, pp.seed = 10 + i;
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/study%d", data, i);
        CHECK_OK(aac_write_sample_study(&pp, dir, &e), &e);
    }
    aac_image im;
    CHECK_OK(aac_image_alloc(&im, 40, 30, 3, "picture", &e), &e);
    for (int i = 0; i < 40 * 30 * 3; i++) im.px[i] = (uint8_t)(i * 13 % 251);
    char png[4200];
    snprintf(png, sizeof png, "%s/photo.png", data);
    CHECK_OK(aac_image_write_png(png, &im, &e), &e);
    aac_image_release(&im);
    const char *paths[1] = {data};

    recorder rec = {0};
    aac_score_params p = aac_score_default_params();
    p.pictures = AAC_PICTURES_ALWAYS;
    p.formats = AAC_FORMAT_NIFTI | AAC_FORMAT_SEG;
    p.log = on_log, p.user = &rec;
    aac_scorer *sc = NULL;
    CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);

    /* the reference: one process, aac_score_paths */
    const char *ref = dt_scratch("batch_ref");
    aac_score_counts c;
    CHECK_OK(aac_score_paths(sc, paths, 1, ref, &c, &e), &e);
    CHECK(c.done == 7 && !c.failed && !c.skipped, "reference: %d done %d failed", c.done, c.failed);
    json_t *sref = load_summary(ref);

    /* the same batch: items in the reference's order, scored backwards, every other one from
     * its packed bytes */
    const char *root = dt_scratch("batch_parts");
    aac_score_batch *b = NULL;
    CHECK_OK(aac_score_batch_open(sc, paths, 1, root, &b, &e), &e);
    const int n = aac_score_batch_count(b);
    CHECK(n == 7 && strlen(aac_score_batch_digest(b)) == 16, "%d items, digest %s", n, aac_score_batch_digest(b));
    int64_t all = 0, biggest = 0;
    for (int k = 0; k < n; k++) {
        const aac_score_item *it = aac_score_batch_item(b, k);
        json_t *row = json_array_get(json_object_get(sref, "series"), (size_t)k);
        CHECK(it->index == k && it->row_index == json_integer_value(json_object_get(row, "series_index")) &&
                  it->is_picture == (k == n - 1) && aac_score_batch_mine(b, k),
              "item %d: row index %d", k, it->row_index);
        all += it->slices;
        if (it->slices > biggest) biggest = it->slices;
    }
    CHECK(all == 2 * (slices[0] + slices[1] + slices[2]) + 1, "slices of the batch: %lld", (long long)all);
    for (int k = n - 1; k >= 0; k--) {
        aac_score_result r;
        if (k % 2) {
            void *buf = NULL;
            size_t len = 0;
            CHECK_OK(aac_score_batch_pack(b, k, &buf, &len, &e), &e);
            CHECK(aac_score_packed(sc, buf, len - 1, &r, &e) == AAC_ERR_FORMAT, "truncated item accepted");
            CHECK_OK(aac_score_packed(sc, buf, len, &r, &e), &e);
            free(buf);
        } else {
            CHECK_OK(aac_score_batch_score(sc, b, k, &r, &e), &e);
        }
        CHECK(r.state == AAC_SCORE_DONE, "item %d: %s", k, r.error);
        CHECK_OK(aac_score_batch_set_result(b, k, &r, &e), &e);
        aac_score_result_free(&r);
        CHECK_OK(aac_score_batch_write(b, 0, 0, &e), &e);
    }
    CHECK_OK(aac_score_batch_write(b, 1, 0, &e), &e);
    aac_score_batch_counts(b, 0, &c);
    CHECK(c.done == 7 && !c.failed, "parts: %d done", c.done);
    json_t *sparts = load_summary(root);
    check_same_summary(sref, ref, sparts, root, "out of order, packed");
    json_decref(sparts);

    /* a failed item without a row of its own (its process died) */
    CHECK_OK(aac_score_batch_set_failed(b, 2, "rank 3 died while scoring it", &e), &e);
    CHECK_OK(aac_score_batch_write(b, 1, 0, &e), &e);
    sparts = load_summary(root);
    json_t *row = json_array_get(json_object_get(sparts, "series"), 2);
    CHECK(!strcmp(json_string_value(json_object_get(row, "status")), "failed") &&
              strstr(json_string_value(json_object_get(row, "error")), "rank 3 died") &&
              json_object_get(row, "series_uid") && json_object_get(row, "output_dir") &&
              json_integer_value(json_object_get(json_object_get(sparts, "counts"), "failed")) == 1,
          "failed row");
    json_decref(sparts);

    /* the split: a partition, balanced by slices, the same whatever root is called */
    for (int shards = 1; shards <= 4; shards++) {
        int64_t load[5] = {0};
        for (int k = 0; k < n; k++) {
            const int s = aac_score_batch_shard_of(b, k, shards);
            CHECK(s >= 1 && s <= shards, "item %d: shard %d of %d", k, s, shards);
            if (s >= 1 && s <= shards) load[s] += aac_score_batch_item(b, k)->slices;
        }
        int64_t lo = all, hi = 0;
        for (int s = 1; s <= shards; s++) lo = load[s] < lo ? load[s] : lo, hi = load[s] > hi ? load[s] : hi;
        CHECK(hi - lo <= biggest, "%d shards: loads from %lld to %lld slices", shards, (long long)lo, (long long)hi);
    }
    CHECK(aac_score_batch_shard_of(b, 0, 0) == 0 && aac_score_batch_shard_of(b, n, 2) == 0, "bad shard arguments");
    char other[4200];
    snprintf(other, sizeof other, "%s/../batch_parts", ref);
    aac_score_batch *b2 = NULL;
    CHECK_OK(aac_score_batch_open(sc, paths, 1, other, &b2, &e), &e);
    CHECK(!strcmp(aac_score_batch_digest(b), aac_score_batch_digest(b2)), "digest depends on how root is spelt");
    for (int k = 0; k < n; k++)
        CHECK(aac_score_batch_shard_of(b, k, 3) == aac_score_batch_shard_of(b2, k, 3), "split differs for item %d", k);
    aac_score_batch_free(b2);
    aac_score_batch_free(b);
    aac_scorer_free(sc);

    /* a job array: shard 1/2 then 2/2 with aac_score_paths; the last one merges */
    const char *jroot = dt_scratch("batch_shards");
    for (int k = 1; k <= 2; k++) {
        p.shard = k, p.shards = 2;
        memset(&rec, 0, sizeof rec);
        CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);
        CHECK_OK(aac_score_paths(sc, paths, 1, jroot, &c, &e), &e);
        CHECK(c.done >= 1 && !c.failed, "shard %d: %d done", k, c.done);
        CHECK(rec.merged == (k == 2), "shard %d: merged %d", k, rec.merged);
        aac_scorer_free(sc);
        char sp[4200];
        snprintf(sp, sizeof sp, "%s/summary.json", jroot);
        CHECK((access(sp, F_OK) == 0) == (k == 2), "after shard %d: summary.json %s", k, k == 2 ? "missing" : "early");
    }
    json_t *sjob = load_summary(jroot);
    check_same_summary(sref, ref, sjob, jroot, "shards 1/2 + 2/2");
    CHECK(json_integer_value(json_object_get(json_object_get(sjob, "counts"), "done")) == 7, "merged counts");
    json_t *r0 = json_array_get(json_object_get(sjob, "series"), 0);
    CHECK(json_string_value(json_object_get(r0, "shard")) && json_string_value(json_object_get(r0, "host")),
          "merged rows do not say where they ran");
    json_decref(sjob);

    /* shard 2 has not finished: its items are "not scored", counted as failed */
    int complete = 1;
    CHECK(dt_run("mv '%s/shards/2-of-2/summary.json' '%s/shards/2-of-2/summary.json.away'", jroot, jroot) == 0, "mv");
    CHECK_OK(aac_score_merge_shards(jroot, &c, &complete, &e), &e);
    sjob = load_summary(jroot);
    int not_scored = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(sjob, "series")); i++) {
        json_t *x = json_array_get(json_object_get(sjob, "series"), i);
        if (!strcmp(json_string_value(json_object_get(x, "status")), "not scored")) {
            not_scored++;
            CHECK(strstr(json_string_value(json_object_get(x, "error")), "--shard 2/2") != NULL, "no advice");
        }
    }
    CHECK(!complete && not_scored >= 1 && c.failed == not_scored && c.done == 7 - not_scored &&
              json_array_size(json_object_get(sjob, "series")) == 7,
          "missing shard: complete %d, %d not scored, %d failed", complete, not_scored, c.failed);
    json_decref(sjob);
    CHECK(dt_run("mv '%s/shards/2-of-2/summary.json.away' '%s/shards/2-of-2/summary.json'", jroot, jroot) == 0, "mv");
    CHECK_OK(aac_score_merge_shards(jroot, &c, &complete, &e), &e);
    CHECK(complete && c.done == 7 && !c.failed, "merge again: complete %d, %d done", complete, c.done);

    /* shards of other inputs, or of two splits, are refused */
    CHECK(dt_run("sed -i 's/\"digest\": \"/\"digest\": \"0/' '%s/shards/2-of-2/batch.json'", jroot) == 0, "sed");
    CHECK(aac_score_merge_shards(jroot, &c, &complete, &e) == AAC_ERR_FORMAT && strstr(e.message, "other inputs"),
          "other inputs: %s", e.message);
    CHECK(dt_run("mkdir -p '%s/shards/1-of-3'", jroot) == 0, "mkdir");
    CHECK(aac_score_merge_shards(jroot, &c, &complete, &e) == AAC_ERR_FORMAT && strstr(e.message, "two splits"),
          "two splits: %s", e.message);
    CHECK(aac_score_merge_shards(ref, &c, &complete, &e) == AAC_ERR_MISSING, "no shards: %s", e.message);

    json_decref(sref);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return tu_finish("test_score_batch");
}
