/* cmd_train.c - aaclip train: both AA-CLIP stages on a JSON-lines dataset, checkpoints after
 * every epoch, the trained model as a bundle. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_data.h"
#include "aaclip_train.h"
#include "cli.h"
#include "cmd_train.h"
#include "fsutil.h"
#include "progress.h"
#include "safetensors.h"

typedef struct train_opts {
    model_opts mo;
    const char *data, *out, *dump, *resume;
    int stages[2], n_stages;
    int epochs[3], batch[3];
    float lr[3];
    int n_milestones, milestones[AAC_MAX_MILESTONES], milestones_set;
    int augment, shuffle, max_steps, all_levels, xavier;
    uint64_t seed;
    aac_surgery_attention attention;
} train_opts;

/* The defaults, shared by parsing and --help (the reference's recipe, spec section 3). */
static void train_opts_defaults(train_opts *o) {
    memset(o, 0, sizeof *o);
    o->mo.params = aac_model_default_params();
    o->stages[0] = 1, o->stages[1] = 2, o->n_stages = 2;
    o->epochs[1] = 5, o->epochs[2] = 20;
    o->batch[1] = 16, o->batch[2] = 2;
    o->augment = o->shuffle = 1;
    o->seed = 111;
    o->attention = AAC_SURGERY_TOKENS;
}

static void train_help(void) {
    train_opts d;
    train_opts_defaults(&d);
    const aac_train_params p1 = aac_train_default_params(1), p2 = aac_train_default_params(2);
    char ms[128] = "";
    for (int i = 0, n = 0; i < p2.n_milestones; i++)
        n += snprintf(ms + n, sizeof ms - (size_t)n, "%s%d", i ? "," : "", p2.milestones[i]);
    printf("usage: aaclip train --model BUNDLE --data train.jsonl -o OUTDIR [options] [model options]\n"
           "\n"
           "Trains the AA-CLIP adapters (CLIP stays frozen): stage 1 the text adapters, stage 2 the\n"
           "vision adapters and the seg/det projections against the stage-1 anchors. OUTDIR receives\n"
           "checkpoint-stage<S>-epoch<E>.safetensors after every epoch (adapters + Adam state; resume\n"
           "with --resume), checkpoint-stage<S>-last.safetensors, adapters.safetensors and model/, the\n"
           "trained model bundle (usable with --model by every command).\n"
           "\n"
           "  --stage 1|2|both          stages to run (default both: 1 then 2)\n"
           "  --epochs N                epochs of stage 2, or of the only stage (defaults %d / %d)\n"
           "  --text-epochs N           epochs of stage 1 when both run (default %d)\n"
           "  --batch-size N            batch of stage 2, or of the only stage (defaults %d / %d)\n"
           "  --text-batch-size N       batch of stage 1 when both run (default %d)\n"
           "  --lr X                    learning rate of stage 2, or of the only stage (%g / %g)\n"
           "  --text-lr X               learning rate of stage 1 when both run (default %g)\n"
           "  --milestones A,B          stage 2: multiply the learning rate by %g after these steps (%s)\n"
           "  --no-augment              no rotation, translation, flips, colour jitter\n"
           "  --no-shuffle              samples in file order\n"
           "  --seed N                  shuffling, augmentation and Xavier init (default %llu)\n"
           "  --max-steps N             stop each stage after N optimizer steps\n"
           "  --dump OUT.safetensors    after the last step of each stage: loss, gradients and updated\n"
           "                            parameters under the golden names (train1.*, train2.*)\n"
           "  --resume CKPT             continue from a checkpoint (its stage, step and Adam state)\n"
           "  --surgery-attention token|batch  stage-1 V-V attention across the tokens of each image\n"
           "                            (default) or across the batch (the reference's behaviour)\n"
           "  --all-levels              stage 1: seg loss of every level (reference: the last only)\n"
           "  --init model|xavier       start from the bundle's adapters (default when it has them) or\n"
           "                            a Xavier-uniform draw from --seed\n"
           "\n",
           d.epochs[2], d.epochs[1], d.epochs[1], d.batch[2], d.batch[1], d.batch[1], p2.lr, p1.lr, p1.lr, p2.lr_gamma,
           ms, (unsigned long long)d.seed);
    model_opts_help();
}



/* ------------------------------------------------------------------ bundle helpers */

/* The bundle's backbone file, from model.json "files". */
static char *bundle_clip_path(const aac_bundle *b, const char *dir) {
    json_t *root = json_loads(aac_bundle_json(b), 0, NULL);
    const char *name = json_string_value(json_object_get(json_object_get(root, "files"), "clip"));
    char *p = name ? fs_join(dir, name) : NULL;
    json_decref(root);
    return p;
}

/* model.json plays the part of the metadata; the caller's overrides win (as aac_bundle_load). */
static aac_model_params bundle_params(const aac_bundle *b, const aac_model_params *in) {
    aac_model_params p = *in;
    const aac_config *c = aac_bundle_config(b);
    if (p.vision_head_width <= 0) p.vision_head_width = c->v_head_width;
    if (p.text_heads <= 0) p.text_heads = c->t_heads;
    if (p.image_size <= 0) p.image_size = c->img;
    if (p.activation == AAC_ACT_DEFAULT) p.activation = c->activation;
    return p;
}

static int stage_of_checkpoint(const char *path, int64_t *step) {
    st_file *f;
    aac_error err;
    if (st_open(path, &f, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        return -1;
    }
    const char *s = st_metadata(f, "stage"), *st = st_metadata(f, "step");
    const int stage = s ? atoi(s) : 0;
    *step = st ? atoll(st) : 0;
    st_close(f);
    if (stage != 1 && stage != 2) {
        fprintf(stderr, "aaclip: %s: not a training checkpoint (no stage 1 or 2 in __metadata__)\n", path);
        return -1;
    }
    return stage;
}

/* Copies every tensor of `from` into w (the merged --dump file). */
static aac_status append_tensors(st_writer *w, const char *from, aac_error *err) {
    st_file *f;
    aac_status s = st_open(from, &f, err);
    for (size_t i = 0; !s && i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        s = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, err);
    }
    if (f) st_close(f);
    return s;
}

/* ------------------------------------------------------------------ one stage */

typedef struct run_ctx {
    const train_opts *o;
    const aac_bundle *bundle;
    const aac_dataset *ds;
    aac_model *m;
    const aac_tokenizer *tok;
    const char *resume; /* checkpoint of this stage, or NULL */
    char dump_part[2][4096];
} run_ctx;

static int run_stage(run_ctx *c, int stage, aac_train_stats *last) {
    const train_opts *o = c->o;
    const aac_config *cfg = aac_model_config(c->m);
    const int S = cfg->img, n = aac_dataset_count(c->ds);
    const int B = o->batch[stage] < n ? o->batch[stage] : n;
    aac_error err = {0};
    aac_train_params p = aac_train_default_params(stage);
    if (o->lr[stage] > 0) p.lr = o->lr[stage];
    if (stage == 2 && o->milestones_set) {
        p.n_milestones = o->n_milestones;
        memcpy(p.milestones, o->milestones, sizeof p.milestones);
    }
    p.surgery_attention = o->attention;
    p.all_levels = o->all_levels;
    /* the reference's 19 V-V blocks of 24, scaled to the depth */
    p.surgery_layers = (int)lround(19.0 * cfg->v_layers / 24.0);
    if (p.surgery_layers < 1) p.surgery_layers = 1;
    p.seed = o->seed;
    p.init = (o->xavier || !aac_model_has_adapters(c->m)) && !c->resume ? AAC_INIT_XAVIER : AAC_INIT_MODEL;
    aac_trainer *t = NULL;
    if (aac_trainer_new(c->m, c->tok, &p, &t, &err) || (c->resume && aac_trainer_resume(t, c->resume, &err))) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        aac_trainer_free(t);
        return -1;
    }
    const int64_t spe = (n + B - 1) / B, total = spe * o->epochs[stage];
    const int64_t start = aac_trainer_steps(t);
    int64_t stop = total;
    if (o->max_steps > 0 && start + o->max_steps < stop) stop = start + o->max_steps;
    printf("stage %d: %d samples, batch %d, %lld steps per epoch, %d epochs, lr %g%s%s; from step %lld\n", stage, n,
           B, (long long)spe, o->epochs[stage], p.lr, o->augment ? ", augmented" : "",
           stage == 1 && o->attention == AAC_SURGERY_BATCH ? ", batch-axis surgery attention" : "",
           (long long)start);
    fflush(stdout);

    float *img = malloc(sizeof(float) * (size_t)B * 3 * S * S), *mask = malloc(sizeof(float) * (size_t)B * S * S);
    int *lab = malloc(sizeof(int) * B), *order = malloc(sizeof(int) * n);
    const char **desc = malloc(sizeof(char *) * B);
    const aac_augment aug = aac_augment_default(stage);
    int rc = img && mask && lab && order && desc ? 0 : -1;
    if (rc) fprintf(stderr, "aaclip: out of memory for a batch of %d at %d x %d\n", B, S, S);
    progress pg;
    char what[32], info[160], path[4096];
    snprintf(what, sizeof what, "stage %d", stage);
    progress_start(&pg, what, stop - start);
    double loss_sum = 0;
    int64_t loss_n = 0, step = start;
    memset(last, 0, sizeof *last);
    for (int64_t epoch = start / spe; !rc && step < stop; epoch++) {
        for (int i = 0; i < n; i++) order[i] = i;
        if (o->shuffle) { /* Fisher-Yates from (seed, stage, epoch) alone */
            uint64_t r = aac_seed_mix(o->seed, (uint64_t)stage, (uint64_t)epoch, 0x5f);
            for (int i = n - 1; i > 0; i--) {
                r = aac_seed_mix(r, (uint64_t)i, 0, 0);
                const int j = (int)(r % (uint64_t)(i + 1)), tmp = order[i];
                order[i] = order[j], order[j] = tmp;
            }
        }
        for (int64_t b = step - epoch * spe; !rc && b < spe && step < stop; b++) {
            const int first = (int)(b * B), nb = first + B <= n ? B : n - first;
            for (int k = 0; k < nb && !rc; k++) {
                const int idx = order[first + k];
                const aac_sample *x = aac_dataset_sample(c->ds, idx);
                const uint64_t seed = aac_seed_mix(o->seed, (uint64_t)stage, (uint64_t)epoch, (uint64_t)idx + 1);
                if (aac_dataset_load(c->ds, idx, S, o->augment ? &aug : NULL, seed, img + (size_t)k * 3 * S * S,
                                     mask + (size_t)k * S * S, NULL, &err)) {
                    fprintf(stderr, "%saaclip: %s\n", pg.tty ? "\n" : "", err.message);
                    rc = -1;
                }
                lab[k] = x->label;
                desc[k] = aac_bundle_describe_class(c->bundle, NULL, x->class_name, NULL);
            }
            if (rc) break;
            aac_train_batch batch = {nb, img, mask, lab, desc};
            if (aac_train_step(t, &batch, last, &err)) {
                fprintf(stderr, "%saaclip: step %lld: %s\n", pg.tty ? "\n" : "", (long long)step + 1, err.message);
                rc = -1;
                break;
            }
            if (!isfinite(last->loss)) {
                fprintf(stderr, "%saaclip: step %lld: the loss is not finite (%g); lower --lr\n", pg.tty ? "\n" : "",
                        (long long)step + 1, last->loss);
                rc = -1;
                break;
            }
            step++;
            loss_sum += last->loss, loss_n++;
            snprintf(info, sizeof info, "epoch %lld, loss %.4f (mean %.4f), lr %.3g", (long long)epoch + 1,
                     last->loss, loss_sum / loss_n, last->lr);
            progress_update(&pg, step - start, info);
            if (step % spe == 0) { /* end of an epoch */
                snprintf(path, sizeof path, "%s/checkpoint-stage%d-epoch%lld.safetensors", o->out, stage,
                         (long long)(step / spe));
                if (aac_trainer_save(t, path, &err)) {
                    fprintf(stderr, "%saaclip: %s\n", pg.tty ? "\n" : "", err.message);
                    rc = -1;
                }
            }
        }
    }
    if (!rc) {
        snprintf(info, sizeof info, "last loss %.4f, mean %.4f", last->loss, loss_n ? loss_sum / loss_n : 0);
        progress_finish(&pg, info);
        snprintf(path, sizeof path, "%s/checkpoint-stage%d-last.safetensors", o->out, stage);
        if (aac_trainer_save(t, path, &err)) rc = -1;
        /* the adapters as they are now (stage 1's feed stage 2; the last ones feed the bundle) */
        snprintf(path, sizeof path, "%s/adapters.safetensors", o->out);
        if (!rc && aac_model_save(c->m, NULL, path, &err)) rc = -1;
        if (!rc && o->dump && step > start) {
            snprintf(c->dump_part[stage - 1], sizeof c->dump_part[0], "%s/.dump-stage%d.safetensors", o->out, stage);
            if (aac_trainer_dump(t, c->dump_part[stage - 1], NULL, &err)) rc = -1;
        }
        if (rc) fprintf(stderr, "aaclip: %s\n", err.message);
    }
    free(img), free(mask), free(lab), free(order), free(desc);
    aac_trainer_free(t);
    return rc;
}

/* ------------------------------------------------------------------ options */

static int parse_float(const char *opt, const char *v, float *out) {
    char *end;
    const double d = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v || !(d > 0) || !isfinite(d)) {
        fprintf(stderr, "aaclip train: %s expects a positive number, got '%s'\n", opt, v ? v : "(nothing)");
        return -1;
    }
    *out = (float)d;
    return 0;
}

static int parse_train(train_opts *o, int argc, char **argv) {
    train_opts_defaults(o);
    int epochs = 0, text_epochs = 0, batch = 0, text_batch = 0, seed = -1;
    float lr = 0, text_lr = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = model_opts_parse(&o->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            train_help();
            return 1;
        } else if (!strcmp(a, "--no-augment")) o->augment = 0;
        else if (!strcmp(a, "--no-shuffle")) o->shuffle = 0;
        else if (!strcmp(a, "--all-levels")) o->all_levels = 1;
        else if (!v) {
            fprintf(stderr, "aaclip train: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        } else {
            i++;
            if (!strcmp(a, "--data")) o->data = v;
            else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = v;
            else if (!strcmp(a, "--dump")) o->dump = v;
            else if (!strcmp(a, "--resume")) o->resume = v;
            else if (!strcmp(a, "--stage")) {
                if (!strcmp(v, "1") || !strcmp(v, "2")) o->stages[0] = v[0] - '0', o->n_stages = 1;
                else if (!strcmp(v, "both")) o->n_stages = 2;
                else {
                    fprintf(stderr, "aaclip train: --stage expects 1, 2 or both, got '%s'\n", v);
                    return 2;
                }
            } else if (!strcmp(a, "--epochs")) {
                if (parse_int(a, v, 1, 1000000, &epochs)) return 2;
            } else if (!strcmp(a, "--text-epochs")) {
                if (parse_int(a, v, 1, 1000000, &text_epochs)) return 2;
            } else if (!strcmp(a, "--batch-size")) {
                if (parse_int(a, v, 1, 4096, &batch)) return 2;
            } else if (!strcmp(a, "--text-batch-size")) {
                if (parse_int(a, v, 1, 4096, &text_batch)) return 2;
            } else if (!strcmp(a, "--max-steps")) {
                if (parse_int(a, v, 1, 2147483647, &o->max_steps)) return 2;
            } else if (!strcmp(a, "--seed")) {
                if (parse_int(a, v, 0, 2147483647, &seed)) return 2;
            } else if (!strcmp(a, "--lr")) {
                if (parse_float(a, v, &lr)) return 2;
            } else if (!strcmp(a, "--text-lr")) {
                if (parse_float(a, v, &text_lr)) return 2;
            } else if (!strcmp(a, "--milestones")) {
                o->milestones_set = 1;
                o->n_milestones = 0;
                for (const char *q = v; *q && strcmp(v, "none");) {
                    char *end;
                    long m = strtol(q, &end, 10);
                    if (end == q || m <= 0 || o->n_milestones == AAC_MAX_MILESTONES || (*end && *end != ',')) {
                        fprintf(stderr, "aaclip train: --milestones expects step numbers like 16000,32000 "
                                        "(or none), got '%s'\n", v);
                        return 2;
                    }
                    o->milestones[o->n_milestones++] = (int)m;
                    q = *end ? end + 1 : end;
                }
            } else if (!strcmp(a, "--surgery-attention")) {
                if (!strcmp(v, "token") || !strcmp(v, "tokens")) o->attention = AAC_SURGERY_TOKENS;
                else if (!strcmp(v, "batch")) o->attention = AAC_SURGERY_BATCH;
                else {
                    fprintf(stderr, "aaclip train: --surgery-attention expects token or batch, got '%s'\n", v);
                    return 2;
                }
            } else if (!strcmp(a, "--init")) {
                if (!strcmp(v, "model") || !strcmp(v, "xavier")) o->xavier = v[0] == 'x';
                else {
                    fprintf(stderr, "aaclip train: --init expects model or xavier, got '%s'\n", v);
                    return 2;
                }
            } else {
                fprintf(stderr, "aaclip train: unknown option '%s' (see --help)\n", a);
                return 2;
            }
        }
    }
    if (seed >= 0) o->seed = (uint64_t)seed;
    /* --epochs/--batch-size/--lr: stage 2's, or the only stage's; --text-*: stage 1's */
    const int only1 = o->n_stages == 1 && o->stages[0] == 1;
    if (epochs) o->epochs[only1 ? 1 : 2] = epochs;
    if (batch) o->batch[only1 ? 1 : 2] = batch;
    if (lr > 0) o->lr[only1 ? 1 : 2] = lr;
    if (text_epochs) o->epochs[1] = text_epochs;
    if (text_batch) o->batch[1] = text_batch;
    if (text_lr > 0) o->lr[1] = text_lr;
    if (!o->mo.bundle || !o->data || !o->out) {
        fprintf(stderr, "aaclip train: --model BUNDLE, --data FILE and -o OUTDIR are required\n");
        return 2;
    }
    if (o->mo.clip || o->mo.adapters) {
        fprintf(stderr, "aaclip train: give the model as a bundle (--model; aaclip model import makes one)\n");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ the command */

int cmd_train(int argc, char **argv) {
    train_opts o;
    int r = parse_train(&o, argc, argv);
    if (r) return r == 1 ? 0 : r;
    set_threads(o.mo.params.n_threads);
    aac_error err = {0};
    aac_bundle *b = NULL;
    aac_dataset *ds = NULL;
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    char *clip = NULL, *adapters = NULL, *bundle_out = NULL;
    run_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int rc = 1;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "aaclip: %s: cannot create: %s\n", o.out, strerror(errno));
        return 1;
    }
    if (aac_bundle_open(o.mo.bundle, &b, &err) || aac_dataset_open(o.data, &ds, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        goto done;
    }
    clip = bundle_clip_path(b, o.mo.bundle);
    adapters = fs_join(o.out, "adapters.safetensors");
    bundle_out = fs_join(o.out, "model");
    if (!clip || !adapters || !bundle_out) {
        fprintf(stderr, "aaclip: %s/model.json: no files.clip\n", o.mo.bundle);
        goto done;
    }
    const aac_model_params mp = bundle_params(b, &o.mo.params);
    int first = 0, resume_stage = 0;
    if (o.resume) {
        int64_t step;
        if ((resume_stage = stage_of_checkpoint(o.resume, &step)) < 0) goto done;
        while (first < o.n_stages && o.stages[first] != resume_stage) first++;
        if (first == o.n_stages) {
            fprintf(stderr, "aaclip train: %s is a stage-%d checkpoint but --stage does not run stage %d\n", o.resume,
                    resume_stage, resume_stage);
            goto done;
        }
        printf("resuming stage %d at step %lld from %s\n", resume_stage, (long long)step, o.resume);
    }
    /* the tokenizer: --tokenizer, else the bundle's; the model: the bundle's, or the backbone
     * with the checkpoint's adapters (every adapter, trained in earlier stages or not) */
    if (aac_bundle_load(b, &mp, &m, o.mo.tokenizer ? NULL : &tok, &err) ||
        (o.mo.tokenizer && aac_tokenizer_open_bpe(o.mo.tokenizer, &tok, &err))) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        goto done;
    }
    if (o.resume) {
        aac_model_free(m);
        m = NULL;
        if (aac_model_open(clip, o.resume, &mp, &m, &err)) {
            fprintf(stderr, "aaclip: %s\n", err.message);
            goto done;
        }
    }
    ctx.o = &o, ctx.bundle = b, ctx.ds = ds, ctx.tok = tok;
    for (int si = first; si < o.n_stages; si++) {
        const int stage = o.stages[si];
        ctx.m = m;
        ctx.resume = si == first && o.resume ? o.resume : NULL;
        aac_train_stats last;
        if (run_stage(&ctx, stage, &last)) goto done;
        /* the trainer put the model's own tensors back: reopen it with what was trained */
        aac_model_free(m);
        m = NULL;
        if (aac_model_open(clip, adapters, &mp, &m, &err)) {
            fprintf(stderr, "aaclip: %s\n", err.message);
            goto done;
        }
    }
    if (o.dump) {
        st_writer *w = st_writer_new();
        aac_status s = w ? AAC_OK : AAC_ERR_NOMEM;
        for (int k = 0; k < 2 && !s; k++)
            if (ctx.dump_part[k][0]) s = append_tensors(w, ctx.dump_part[k], &err);
        if (!s) s = st_writer_save(w, o.dump, &err);
        st_writer_free(w);
        if (s) {
            fprintf(stderr, "aaclip: %s\n", err.message);
            goto done;
        }
        printf("wrote %s\n", o.dump);
    }
    /* the trained bundle: the same backbone and tokenizer, the new adapters, the settings the
     * model ran with (so nothing is re-decided on import) */
    aac_import_params ip = aac_import_default_params();
    const aac_config *c = aac_model_config(m);
    ip.tokenizer = o.mo.tokenizer ? o.mo.tokenizer : o.mo.bundle;
    ip.force = 1;
    ip.vision_head_width = c->v_head_width;
    ip.text_heads = c->t_heads;
    ip.image_size = c->img;
    ip.activation = c->activation;
    const char *src[2] = {clip, adapters};
    if (aac_import_bundle(src, 2, &ip, bundle_out, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        goto done;
    }
    printf("trained model bundle: %s\n", bundle_out);
    rc = 0;
done:
    for (int k = 0; k < 2; k++)
        if (ctx.dump_part[k][0]) unlink(ctx.dump_part[k]);
    aac_model_free(m);
    aac_tokenizer_free(tok);
    aac_dataset_free(ds);
    aac_bundle_free(b);
    free(clip), free(adapters), free(bundle_out);
    return rc;
}
