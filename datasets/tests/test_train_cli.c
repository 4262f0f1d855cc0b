/* test_train_cli.c - aaclip train / eval / make-phantoms / random-model end to end:
 *  - a tiny random model trained 2 steps per stage on generated phantoms, evaluated, resumed
 *    (fast: a few seconds). The golden step through the CLI is test_train_cli_golden.c. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_data.h"
#include "safetensors.h"
#include "testutil.h"

#include "cli_testutil.h"

static int same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        const int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void test_tiny(void) {
    char a[4096];
    printf("tiny random model on phantoms\n");
    snprintf(a, sizeof a, "make-phantoms -o '%s' --volumes 1 --slices 10 --lesions 2-2 --size 96 --seed 3", P("ph"));
    CHECK(run(a) == 0, "make-phantoms");
    snprintf(a, sizeof a, "random-model -o '%s' --config test --seed 5", P("rnd"));
    CHECK(run(a) == 0, "random-model");
    snprintf(a, sizeof a,
             "train --model '%s' --data '%s' -o '%s' --max-steps 2 --text-batch-size 4 --batch-size 2 --dump '%s' "
             "--threads 2",
             P("rnd"), P("ph/data.jsonl"), P("out"), P("dump.safetensors"));
    CHECK(run(a) == 0, "train 2 steps per stage");
    CHECK(exists(P("out/model/model.json")) && exists(P("out/model/adapters.safetensors")), "trained bundle");
    /* the same run on one thread gives the same bytes (seeded data order, augmentation, init;
     * thread-count independent kernels) */
    snprintf(a, sizeof a,
             "train --model '%s' --data '%s' -o '%s' --max-steps 2 --text-batch-size 4 --batch-size 2 --threads 1",
             P("rnd"), P("ph/data.jsonl"), P("out_t1"));
    CHECK(run(a) == 0, "train on one thread");
    CHECK(same_bytes(P("out/adapters.safetensors"), P("out_t1/adapters.safetensors")),
          "training is deterministic and thread-count independent");
    CHECK(exists(P("out/checkpoint-stage1-last.safetensors")) && exists(P("out/checkpoint-stage2-last.safetensors")),
          "checkpoints");
    aac_error err;
    st_file *d;
    CHECK_OK(st_open(P("dump.safetensors"), &d, &err), &err);
    CHECK(st_find(d, "train1.loss") && st_find(d, "train2.loss") && st_find(d, "train2.loss_ce") &&
              st_find(d, "train1.grad.text_adapter.0.fc.0.weight") &&
              st_find(d, "train2.after.image_adapter.det_proj.fc.weight"),
          "dump holds both stages under the golden names");
    st_close(d);
    /* the bundle runs with every command: open it */
    aac_model *m;
    aac_tokenizer *tok;
    CHECK_OK(aac_model_open_bundle(P("out/model"), NULL, &m, &tok, &err), &err);
    CHECK(aac_model_has_adapters(m) && aac_model_config(m)->img == 112, "bundle model");
    aac_model_free(m);
    aac_tokenizer_free(tok);

    snprintf(a, sizeof a, "eval --model '%s' --data '%s' --json '%s' --csv '%s' --threads 2", P("out/model"),
             P("ph/data.jsonl"), P("e.json"), P("e.csv"));
    CHECK(run(a) == 0, "eval");
    CHECK(log_has("pixel AUROC") && log_has("phantom"), "eval table");
    json_t *j = json_load_file(P("e.json"), 0, NULL);
    json_t *c0 = json_array_get(json_object_get(j, "classes"), 0);
    const double pa = json_real_value(json_object_get(c0, "pixel_auroc"));
    CHECK(j && !strcmp(json_string_value(json_object_get(c0, "class")), "phantom") &&
              json_integer_value(json_object_get(c0, "images")) == 10 && pa > 0 && pa < 1,
          "eval JSON (pixel AUROC %g)", pa);
    json_decref(j);
    CHECK(exists(P("e.csv")), "eval CSV");

    /* resume stage 2 from its checkpoint: the step count goes on */
    snprintf(a, sizeof a, "train --model '%s' --data '%s' -o '%s' --stage 2 --resume '%s' --max-steps 1 --threads 2",
             P("rnd"), P("ph/data.jsonl"), P("out2"), P("out/checkpoint-stage2-last.safetensors"));
    CHECK(run(a) == 0, "resume");
    CHECK(log_has("from step 2"), "resumed at step 2");
    if (st_open(P("out2/checkpoint-stage2-last.safetensors"), &d, &err) == AAC_OK) {
        const char *step = st_metadata(d, "step");
        CHECK(step && !strcmp(step, "3"), "step after resume: %s", step ? step : "(none)");
        st_close(d);
    } else {
        CHECK(0, "%s", err.message);
    }
    /* an epoch ends: its checkpoint appears */
    snprintf(a, sizeof a, "train --model '%s' --data '%s' -o '%s' --stage 2 --epochs 1 --batch-size 5 --no-augment --threads 2",
             P("out/model"), P("ph/data.jsonl"), P("out3"));
    CHECK(run(a) == 0 && exists(P("out3/checkpoint-stage2-epoch1.safetensors")), "epoch checkpoint");

    /* usage errors and bad data */
    snprintf(a, sizeof a, "train --model '%s' -o '%s'", P("rnd"), P("out4"));
    CHECK(run(a) == 2, "train without --data is a usage error");
    FILE *f = fopen(P("ph/broken.jsonl"), "w");
    fprintf(f, "{\"image_path\": \"images/v0000_z000.png\", \"label\": 0, \"class_name\": \"phantom\"}\n"
               "{\"image_path\": \"images/missing.png\", \"label\": 0, \"class_name\": \"p\"}\n");
    fclose(f);
    snprintf(a, sizeof a, "eval --model '%s' --data '%s'", P("out/model"), P("ph/broken.jsonl"));
    CHECK(run(a) == 1 && log_has("broken.jsonl:2") && log_has("missing.png"), "a missing file names file and line");
    snprintf(a, sizeof a, "train --model '%s' --data '%s' -o '%s' --surgery-attention sideways", P("rnd"),
             P("ph/data.jsonl"), P("out4"));
    CHECK(run(a) == 2, "bad --surgery-attention");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/test_train_cli_%d", AACLIP_BINARY_DIR, (int)getpid());
    mkdir(g_dir, 0755);
    test_tiny();
    int rc = tu_finish("test_train_cli");
    if (!rc) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return rc;
}
