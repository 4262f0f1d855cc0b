/* score_opts.c - the scoring options every command that scores takes (score, serve), and the
 * log those commands print: plain lines, or one JSON object per line with --json. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int parse_window(const char *cmd, const char *s, aac_norm_params *np) {
    char *end;
    double c = strtod(s, &end);
    if (end != s && *end == '/') {
        double w = strtod(end + 1, &end);
        if (*end || !(w > 0)) {
            fprintf(stderr, "aaclip %s: --window expects PRESET or C/W with W > 0, got '%s'\n", cmd, s);
            return -1;
        }
        np->mode = AAC_NORM_WINDOW, np->center = c, np->width = w;
        return 0;
    }
    double cc, ww;
    aac_error err;
    if (aac_window_preset(s, &cc, &ww, &err)) {
        fprintf(stderr, "aaclip %s: %s\n", cmd, err.message);
        return -1;
    }
    np->mode = AAC_NORM_WINDOW, np->preset = s;
    return 0;
}

int score_opts_parse(aac_score_params *p, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--force")) return p->force = 1, 1;
    if (!strcmp(a, "--all-slices")) return p->all_slices = 1, 1;
    if (!strcmp(a, "--no-calibration")) return p->use_calibration = 0, 1;
    static const char *const with_value[] = {"--pictures", "--class-text", "--series-filter", "--domain", "--window",
                                             "--threshold", "--batch-slices", "--formats"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
    if (!known) return 0;
    if (!v) {
        fprintf(stderr, "aaclip %s: %s needs a value (see --help)\n", cmd, a);
        return -1;
    }
    (*i)++;
    aac_error err;
    if (!strcmp(a, "--pictures")) {
        if (!strcmp(v, "auto")) p->pictures = AAC_PICTURES_AUTO;
        else if (!strcmp(v, "always")) p->pictures = AAC_PICTURES_ALWAYS;
        else if (!strcmp(v, "never")) p->pictures = AAC_PICTURES_NEVER;
        else return fprintf(stderr, "aaclip %s: --pictures expects auto, always or never\n", cmd), -1;
    } else if (!strcmp(a, "--class-text")) {
        p->class_text = v;
    } else if (!strcmp(a, "--series-filter")) {
        p->series_filter = v;
    } else if (!strcmp(a, "--domain")) {
        if (!strcmp(v, "medical")) p->domain = AAC_DOMAIN_MEDICAL;
        else if (!strcmp(v, "industrial")) p->domain = AAC_DOMAIN_INDUSTRIAL;
        else return fprintf(stderr, "aaclip %s: --domain expects medical or industrial\n", cmd), -1;
    } else if (!strcmp(a, "--window")) {
        if (parse_window(cmd, v, &p->norm)) return -1;
    } else if (!strcmp(a, "--threshold")) {
        char *end;
        double t = strtod(v, &end);
        if (*end || end == v || !(t > 0 && t <= 1) || p->n_thresholds == AAC_MAX_THRESHOLDS) {
            fprintf(stderr, "aaclip %s: --threshold expects a value in (0,1] (at most %d), got '%s'\n", cmd,
                    AAC_MAX_THRESHOLDS, v);
            return -1;
        }
        p->thresholds[p->n_thresholds++] = t;
    } else if (!strcmp(a, "--batch-slices")) {
        if (parse_int(a, v, 1, 4096, &p->batch_slices)) return -1;
    } else if (!strcmp(a, "--formats")) {
        if (aac_score_formats_parse(v, &p->formats, &err)) {
            fprintf(stderr, "aaclip %s: --formats: %s\n", cmd, err.message);
            return -1;
        }
    }
    return 1;
}

void score_opts_help(void) {
    const aac_score_params d = aac_score_default_params();
    printf("scoring options:\n"
           "  --class-text TEXT   class description in the prompts (default: the one the bundle's\n"
           "                      calibration was measured with, else \"scan\")\n"
           "  --domain D          medical or industrial: map blur and image score rule (default:\n"
           "                      the bundle's default domain)\n"
           "  --window W          CT window preset (brain, subdural, abdomen, liver, lung, bone) or\n"
           "                      C/W in HU; default from the body part, else abdomen. Other\n"
           "                      modalities use the %g/%g percentiles of each volume.\n"
           "  --threshold T       probability threshold of a binary segment, in (0,1]; repeatable\n"
           "                      (default: the bundle's calibrated region and pixel thresholds,\n"
           "                      regions at the region one; else %g); given thresholds: regions\n"
           "                      and the summary use the lowest\n"
           "  --no-calibration    probabilities from each volume's own map range even when the\n"
           "                      bundle is calibrated (aaclip eval --calibrate); every volume then\n"
           "                      has a region at its maximum\n"
           "  --pictures P        PNG/JPEG files: auto (default) scores them when the PATHs hold no\n"
           "                      DICOM or volume series (a photo folder) and lists them as skipped\n"
           "                      next to series (viewer icons on a patient CD); always; never\n"
           "  --series-filter S   only series whose UID, description or modality contains S\n"
           "  --batch-slices N    slices between interruption checks and progress updates (%d)\n"
           "  --formats LIST      outputs to write: seg,pmap,sr,nifti,nrrd,scene,png (default all)\n"
           "  --all-slices        score slices outside the body too (default: air-only slices\n"
           "                      are skipped and reported)\n"
           "  --force             redo series that already have complete results\n"
           "\n",
           d.norm.p_low, d.norm.p_high, AAC_DEFAULT_THRESHOLD, d.batch_slices);
}

void cli_log(const cli_logger *l, const char *event, const char *series, const char *msg) {
    if (l->json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "event", event, "series", series ? series : "", "message",
                              msg ? msg : "");
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s) fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(j);
    } else if (!l->quiet || !strcmp(event, "error")) {
        fprintf(stderr, "aaclip: %s%s%s\n", series ? series : "", series ? ": " : "", msg ? msg : event);
    }
}

void cli_log_score_event(void *user, aac_score_event ev, const char *series, const char *message) {
    cli_log(user, aac_score_event_name(ev), series, message);
}
