/* aaclip_slicer.c - aaclip-slicer, a 3D Slicer CLI module (SlicerExecutionModel): `--xml`
 * describes the parameters; Slicer then runs the program with the input volume written to a
 * file, parameters as flags and the outputs as file paths, and loads what it wrote.
 *
 *   aaclip-slicer [--model BUNDLE] [--classText T] [--domain D] [--window W] [--threshold P]
 *                 [--allSlices] [--threads N] [--regionsTable OUT.tsv]
 *                 [--returnparameterfile OUT.txt] INPUT.nrrd ANOMALY_MAP.nrrd LABEL_MAP.nrrd
 *
 * The work is the scoring pipeline's (aaclip_score.h: aac_scorer_open, aac_score_volume), the
 * same code `aaclip score` runs on a volume file; this file parses, writes the files Slicer asked
 * for and reports progress in Slicer's <filter-progress> lines. Exit status 0, 1 (failure), 2
 * (usage). Slicer counts anything on stderr as an error, so only warnings and errors go there. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip.h"
#include "aaclip_backend.h"
#include "aaclip_score.h"
#include "fsutil.h"

typedef struct slicer_opts {
    const char *model, *class_text, *window, *regions_table, *return_file;
    const char *input, *map_out, *labels_out;
    int domain;       /* -1: the bundle's */
    double threshold; /* 0: the bundle's calibrated region threshold, else AAC_DEFAULT_THRESHOLD */
    int all_slices, threads;
} slicer_opts;

/* ---------------------------------------------------------------- the description */

static void print_xml(void) {
    const aac_score_params d = aac_score_default_params();
    /* Slicer's parser wants exactly this first line. */
    printf("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
           "<executable>\n"
           "  <category>Segmentation</category>\n"
           "  <title>AA-CLIP anomaly map</title>\n"
           "  <description><![CDATA[Zero-shot anomaly (lesion) detection with AA-CLIP (anomaly-aware CLIP): scores every "
           "slice of the input volume, writes the anomaly map and a label map of the thresholded probability on the "
           "input's grid, and reports the series score and the regions found. Without a model bundle the bundled demo "
           "model is used: it is trained on synthetic phantoms and is NOT FOR CLINICAL USE.]]></description>\n"
           "  <version>%s</version>\n"
           "  <documentation-url>https://github.com/aaclip/aaclip/blob/main/docs/slicer.md</documentation-url>\n"
           "  <license>Apache-2.0</license>\n"
           "  <contributor>aaclip developers</contributor>\n"
           "  <acknowledgements>AA-CLIP (CVPR 2025); OpenAI CLIP</acknowledgements>\n",
           aac_version());
    printf("  <parameters>\n"
           "    <label>Input and outputs</label>\n"
           "    <description>The volume to score and the volumes written on its grid</description>\n"
           "    <image type=\"scalar\">\n"
           "      <name>inputVolume</name>\n"
           "      <label>Input volume</label>\n"
           "      <description>Volume to score (CT in Hounsfield units, or any scalar volume)</description>\n"
           "      <channel>input</channel>\n"
           "      <index>0</index>\n"
           "    </image>\n"
           "    <image type=\"scalar\" reference=\"inputVolume\">\n"
           "      <name>anomalyMap</name>\n"
           "      <label>Anomaly map</label>\n"
           "      <description>Raw anomaly scores (float) on the input grid; the probability mapping is reported "
           "below</description>\n"
           "      <channel>output</channel>\n"
           "      <index>1</index>\n"
           "    </image>\n"
           "    <image type=\"label\" reference=\"inputVolume\">\n"
           "      <name>labelMap</name>\n"
           "      <label>Label map</label>\n"
           "      <description>Voxels whose anomaly probability reaches the threshold (1); with a calibrated bundle "
           "and no threshold given: 1 at the region threshold, 2 also at the pixel threshold</description>\n"
           "      <channel>output</channel>\n"
           "      <index>2</index>\n"
           "    </image>\n"
           "    <table fileExtensions=\".tsv\">\n"
           "      <name>regionsTable</name>\n"
           "      <longflag>--regionsTable</longflag>\n"
           "      <label>Regions</label>\n"
           "      <description>One row per connected region at the region threshold: voxels, volume (mm3), maximum "
           "and mean raw score, centroid in LPS and RAS millimetres</description>\n"
           "      <channel>output</channel>\n"
           "    </table>\n"
           "  </parameters>\n");
    printf("  <parameters>\n"
           "    <label>Model and scoring</label>\n"
           "    <description>Model bundle, class text, domain, CT window and threshold</description>\n"
           "    <directory>\n"
           "      <name>modelBundle</name>\n"
           "      <longflag>--model</longflag>\n"
           "      <label>Model bundle</label>\n"
           "      <description>Model bundle folder (aaclip model import). Empty: the bundled demo model "
           "(synthetic, not for clinical use)</description>\n"
           "      <channel>input</channel>\n"
           "    </directory>\n"
           "    <string>\n"
           "      <name>classText</name>\n"
           "      <longflag>--classText</longflag>\n"
           "      <label>Class text</label>\n"
           "      <description>Class description in the prompts. Empty: the one the bundle's calibration was measured "
           "with, else \"scan\"</description>\n"
           "      <default></default>\n"
           "    </string>\n"
           "    <string-enumeration>\n"
           "      <name>domain</name>\n"
           "      <longflag>--domain</longflag>\n"
           "      <label>Domain</label>\n"
           "      <description>medical or industrial (map blur and image score rule); auto: the bundle's</description>\n"
           "      <default>auto</default>\n"
           "      <element>auto</element>\n"
           "      <element>medical</element>\n"
           "      <element>industrial</element>\n"
           "    </string-enumeration>\n"
           "    <string>\n"
           "      <name>window</name>\n"
           "      <longflag>--window</longflag>\n"
           "      <label>CT window</label>\n"
           "      <description>auto, a preset (brain, subdural, abdomen, liver, lung, bone) or C/W in HU. auto: CT by "
           "body part, else abdomen; other modalities the %g/%g percentiles</description>\n"
           "      <default>auto</default>\n"
           "    </string>\n"
           "    <float>\n"
           "      <name>threshold</name>\n"
           "      <longflag>--threshold</longflag>\n"
           "      <label>Probability threshold</label>\n"
           "      <description>Threshold on the anomaly probability for the label map and the regions. 0: the "
           "bundle's calibrated thresholds, else %g</description>\n"
           "      <default>0</default>\n"
           "      <constraints>\n"
           "        <minimum>0</minimum>\n"
           "        <maximum>1</maximum>\n"
           "        <step>0.05</step>\n"
           "      </constraints>\n"
           "    </float>\n"
           "    <boolean>\n"
           "      <name>allSlices</name>\n"
           "      <longflag>--allSlices</longflag>\n"
           "      <label>Score air-only slices</label>\n"
           "      <description>Also score slices outside the body (default: skipped)</description>\n"
           "      <default>%s</default>\n"
           "    </boolean>\n"
           "    <integer>\n"
           "      <name>threads</name>\n"
           "      <longflag>--threads</longflag>\n"
           "      <label>Threads</label>\n"
           "      <description>Compute threads (0: all cores)</description>\n"
           "      <default>0</default>\n"
           "      <constraints>\n"
           "        <minimum>0</minimum>\n"
           "        <maximum>256</maximum>\n"
           "        <step>1</step>\n"
           "      </constraints>\n"
           "    </integer>\n"
           "  </parameters>\n",
           d.norm.p_low, d.norm.p_high, AAC_DEFAULT_THRESHOLD, d.all_slices ? "true" : "false");
    printf("  <parameters>\n"
           "    <label>Results</label>\n"
           "    <description>What the scoring found</description>\n"
           "    <float>\n"
           "      <name>seriesScore</name>\n"
           "      <label>Series score</label>\n"
           "      <description>Maximum over slices of the image score (raw)</description>\n"
           "      <channel>output</channel>\n"
           "      <default>0</default>\n"
           "    </float>\n"
           "    <integer>\n"
           "      <name>regionCount</name>\n"
           "      <label>Regions</label>\n"
           "      <description>Connected regions at the region threshold</description>\n"
           "      <channel>output</channel>\n"
           "      <default>0</default>\n"
           "    </integer>\n"
           "    <float>\n"
           "      <name>regionsVolume</name>\n"
           "      <label>Regions volume (ml)</label>\n"
           "      <description>Total volume of the regions</description>\n"
           "      <channel>output</channel>\n"
           "      <default>0</default>\n"
           "    </float>\n"
           "    <float>\n"
           "      <name>usedThreshold</name>\n"
           "      <label>Region threshold</label>\n"
           "      <description>The probability threshold the regions were taken at</description>\n"
           "      <channel>output</channel>\n"
           "      <default>0</default>\n"
           "    </float>\n"
           "    <string>\n"
           "      <name>report</name>\n"
           "      <label>Report</label>\n"
           "      <description>Model, class text, probability mapping and a one-line summary</description>\n"
           "      <channel>output</channel>\n"
           "      <default></default>\n"
           "    </string>\n"
           "  </parameters>\n"
           "</executable>\n");
}

static void usage(FILE *f) {
    const aac_score_params d = aac_score_default_params();
    fprintf(f,
            "usage: aaclip-slicer [options] INPUT ANOMALY_MAP LABEL_MAP\n"
            "       aaclip-slicer --xml\n"
            "\n"
            "A 3D Slicer CLI module: scores the volume INPUT (NRRD, NIfTI, MetaImage) with AA-CLIP and writes\n"
            "the raw anomaly map and the label map on its grid (format by name: .nrrd, .nii, .nii.gz, .mha).\n"
            "Add the folder holding this program to Slicer's module paths (docs/slicer.md).\n"
            "\n"
            "  --xml                   print the SlicerExecutionModel description and exit\n"
            "  --model BUNDLE          model bundle (default: the bundled demo model, not for clinical use)\n"
            "  --classText TEXT       class description (default: the calibration's, else \"scan\")\n"
            "  --domain D              auto (default: the bundle's), medical or industrial\n"
            "  --window W              auto (default), brain, subdural, abdomen, liver, lung, bone, or C/W;\n"
            "                          non-CT: %g/%g percentiles\n"
            "  --threshold P           probability threshold in (0,1]; 0 (default): the bundle's calibrated\n"
            "                          thresholds, else %g\n"
            "  --allSlices            score air-only slices too (default: %s)\n"
            "  --threads N             compute threads (default: all cores)\n"
            "  --regionsTable FILE    the regions as a tab-separated table\n"
            "  --returnparameterfile FILE  series score, region count and volume, threshold, report as\n"
            "                          'name = value' lines (Slicer passes this)\n"
            "\n"
            "Exit status: 0 done, 1 failure, 2 usage.\n",
            d.norm.p_low, d.norm.p_high, AAC_DEFAULT_THRESHOLD, d.all_slices ? "on" : "off");
}

/* ---------------------------------------------------------------- options */

static int parse_args(int argc, char **argv, slicer_opts *o) {
    const char *pos[3] = {0};
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--allSlices")) {
            o->all_slices = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (n_pos == 3) return fprintf(stderr, "aaclip-slicer: too many arguments ('%s')\n", a), -1;
            pos[n_pos++] = a;
            continue;
        }
        static const char *const with_value[] = {"--model", "--classText", "--domain", "--window", "--threshold",
                                                 "--threads", "--regionsTable", "--returnparameterfile",
                                                 "--processinformationaddress"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
        if (!known) return fprintf(stderr, "aaclip-slicer: unknown option '%s' (see --help)\n", a), -1;
        if (!v) return fprintf(stderr, "aaclip-slicer: %s needs a value\n", a), -1;
        i++;
        char *end;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--classText")) o->class_text = v;
        else if (!strcmp(a, "--window")) o->window = v;
        else if (!strcmp(a, "--regionsTable")) o->regions_table = v;
        else if (!strcmp(a, "--returnparameterfile")) o->return_file = v;
        else if (!strcmp(a, "--domain")) {
            if (!strcmp(v, "auto")) o->domain = -1;
            else if (!strcmp(v, "medical")) o->domain = AAC_DOMAIN_MEDICAL;
            else if (!strcmp(v, "industrial")) o->domain = AAC_DOMAIN_INDUSTRIAL;
            else return fprintf(stderr, "aaclip-slicer: --domain expects auto, medical or industrial\n"), -1;
        } else if (!strcmp(a, "--threshold")) {
            o->threshold = strtod(v, &end);
            if (*end || end == v || !(o->threshold >= 0 && o->threshold <= 1))
                return fprintf(stderr, "aaclip-slicer: --threshold expects a value in [0,1], got '%s'\n", v), -1;
        } else if (!strcmp(a, "--threads")) {
            long t = strtol(v, &end, 10);
            if (*end || end == v || t < 0 || t > 4096)
                return fprintf(stderr, "aaclip-slicer: --threads expects 0..4096, got '%s'\n", v), -1;
            o->threads = (int)t;
        } /* --processinformationaddress: for modules loaded as shared libraries; nothing to do */
    }
    if (n_pos != 3) return fprintf(stderr, "aaclip-slicer: give INPUT ANOMALY_MAP LABEL_MAP (see --help)\n"), -1;
    o->input = pos[0], o->map_out = pos[1], o->labels_out = pos[2];
    return 0;
}

/* --window: "auto"/empty, a preset, or C/W. */
static int parse_window(const char *s, aac_norm_params *np) {
    if (!s || !s[0] || !strcmp(s, "auto")) return 0;
    char *end;
    double c = strtod(s, &end);
    if (end != s && *end == '/') {
        double w = strtod(end + 1, &end);
        if (*end || !(w > 0)) return fprintf(stderr, "aaclip-slicer: --window expects C/W with W > 0, got '%s'\n", s), -1;
        np->mode = AAC_NORM_WINDOW, np->center = c, np->width = w;
        return 0;
    }
    double cc, ww;
    aac_error err;
    if (aac_window_preset(s, &cc, &ww, &err)) return fprintf(stderr, "aaclip-slicer: %s\n", err.message), -1;
    np->mode = AAC_NORM_WINDOW, np->preset = s;
    return 0;
}

/* ---------------------------------------------------------------- reporting */

static void on_log(void *user, aac_score_event ev, const char *series, const char *msg) {
    (void)user;
    /* stdout: Slicer shows it as the module's output; stderr would mark the run as failed */
    FILE *f = ev == AAC_EVENT_WARNING || ev == AAC_EVENT_ERROR ? stderr : stdout;
    fprintf(f, "aaclip-slicer: %s%s%s\n", series ? series : "", series ? ": " : "", msg);
    fflush(f);
}

static void on_progress(void *user, int64_t done, int64_t total) {
    (void)user;
    printf("<filter-progress>%.4f</filter-progress>\n", total > 0 ? (double)done / (double)total : 0.0);
    fflush(stdout);
}

/* The regions as a table Slicer loads (tab-separated, one header line). */
static aac_status write_regions_table(const char *path, const aac_region *g, int n, aac_error *err) {
    size_t cap = 256 + (size_t)n * 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) return AAC_ERR_NOMEM;
    len += (size_t)snprintf(buf, cap,
                            "region\tvoxels\tvolume_mm3\tmax_score\tmean_score\tcentroid_L_mm\tcentroid_P_mm\t"
                            "centroid_S_mm\tcentroid_R_mm\tcentroid_A_mm\n");
    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%d\t%zu\t%.3f\t%.6g\t%.6g\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", k + 1,
                                g[k].n_voxels, g[k].volume_mm3, g[k].max_score, g[k].mean_score, g[k].centroid[0],
                                g[k].centroid[1], g[k].centroid[2], -g[k].centroid[0], -g[k].centroid[1]);
    aac_status s = fs_write_atomic(path, buf, len, err);
    free(buf);
    return s;
}

/* Slicer's simple return parameters: "name = value" lines. */
static aac_status write_return_params(const char *path, double score, int regions, double volume_ml,
                                      double threshold, const char *report, aac_error *err) {
    char buf[8192];
    int n = snprintf(buf, sizeof buf, "seriesScore = %.9g\nregionCount = %d\nregionsVolume = %.6g\nusedThreshold = "
                     "%.6g\nreport = %s\n", score, regions, volume_ml, threshold, report);
    return fs_write_atomic(path, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1), err);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--xml")) return print_xml(), 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout), 0;
        if (!strcmp(argv[i], "--version")) return printf("aaclip-slicer %s\n", aac_version()), 0;
    }
    slicer_opts o = {.domain = -1};
    aac_score_params p = aac_score_default_params();
    if (parse_args(argc, argv, &o) || parse_window(o.window, &p.norm)) return 2;
    if (o.threads > 0) omp_set_num_threads(o.threads);
    /* OpenBLAS kernels that fit this CPU (may restart this program once with OPENBLAS_CORETYPE
     * set); said on stdout: Slicer counts anything on stderr as an error. */
    char blas_note[512];
    aac_blas_kernels_fix(argv, blas_note, sizeof blas_note);
    if (blas_note[0]) printf("aaclip-slicer: %s\n", blas_note);

    /* No bundle given: the bundled demo model, said loudly (stderr and the report). */
    char demo[4096];
    aac_error err = {0};
    const char *bundle = o.model && o.model[0] ? o.model : NULL;
    if (!bundle) {
        if (aac_data_path("demo-model", demo, sizeof demo, &err)) {
            fprintf(stderr, "aaclip-slicer: no model bundle given and %s\n", err.message);
            return 1;
        }
        bundle = demo, p.demo_model = 1;
        fprintf(stderr, "aaclip-slicer: WARNING: no model bundle given: using the bundled DEMO model (%s), a synthetic "
                        "model that is not for clinical use\n", demo);
    }
    printf("<filter-start><filter-name>aaclip-slicer</filter-name><filter-comment>AA-CLIP anomaly map of %s"
           "</filter-comment></filter-start>\n", o.input);
    fflush(stdout);

    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    aac_scorer *sc = NULL;
    aac_volume *v = NULL;
    float *map = NULL;
    aac_region *regions = NULL;
    int n_regions = 0, rc = 1;
    aac_model_params mp = aac_model_default_params();
    mp.n_threads = o.threads;
    p.class_text = o.class_text && o.class_text[0] ? o.class_text : NULL;
    p.domain = o.domain;
    p.all_slices = o.all_slices;
    if (o.threshold > 0) p.thresholds[0] = o.threshold, p.n_thresholds = 1;
    p.formats = 0; /* nothing is written by the pipeline itself */
    p.log = on_log, p.progress = on_progress;
    if (aac_model_open_bundle(bundle, &mp, &m, &tok, &err) || aac_scorer_open(m, tok, bundle, &p, &sc, &err) ||
        aac_volume_read(o.input, &v, &err)) {
        fprintf(stderr, "aaclip-slicer: %s\n", err.message);
        goto out;
    }
    if (v->dim[3] > 1)
        printf("aaclip-slicer: %s holds %d volumes; the first is scored\n", o.input, v->dim[3]);
    const size_t nvox = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    aac_results res;
    if (!(map = malloc(sizeof(float) * nvox))) {
        fprintf(stderr, "aaclip-slicer: out of memory (%zu voxels)\n", nvox);
        goto out;
    }
    if (aac_score_volume(sc, v, 0, map, NULL, &res, NULL, &err) ||
        aac_write_result_image(&res, AAC_IMAGE_ANOMALY_MAP, o.map_out, &err) ||
        aac_write_result_image(&res, AAC_IMAGE_LABEL_MAP, o.labels_out, &err) ||
        aac_regions(&res, aac_scorer_region_level(sc) + 1, aac_output_default_params().connectivity, &regions,
                    &n_regions, &err) ||
        (o.regions_table && o.regions_table[0] && write_regions_table(o.regions_table, regions, n_regions, &err))) {
        fprintf(stderr, "aaclip-slicer: %s\n", err.message);
        goto out;
    }
    const aac_score_params *used = aac_scorer_params(sc);
    double volume = 0, low, high;
    for (int k = 0; k < n_regions; k++) volume += regions[k].volume_mm3;
    aac_results_range(&res, &low, &high);
    const double thr = used->n_thresholds ? used->thresholds[aac_scorer_region_level(sc)] : AAC_DEFAULT_THRESHOLD;
    char report[4096];
    snprintf(report, sizeof report,
             "%s%.1000s; class \"%.200s\" (%s); probability %s (raw %.6g..%.6g); %d region%s (%.2f ml) at p >= %.3g; "
             "series score %.6g",
             p.demo_model ? "DEMO MODEL (synthetic, not for clinical use) " : "", bundle, used->class_text,
             used->domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical",
             aac_scorer_calibrated(sc) ? "calibrated" : "from this volume's range", low, high, n_regions,
             n_regions == 1 ? "" : "s", volume / 1000.0, thr, res.series_score);
    printf("aaclip-slicer: %s\n", report);
    if (o.return_file && o.return_file[0] &&
        write_return_params(o.return_file, isfinite(res.series_score) ? res.series_score : 0, n_regions,
                            volume / 1000.0, thr, report, &err)) {
        fprintf(stderr, "aaclip-slicer: %s\n", err.message);
        goto out;
    }
    printf("<filter-end><filter-name>aaclip-slicer</filter-name><filter-time>0</filter-time></filter-end>\n");
    rc = 0;
out:
    free(regions);
    free(map);
    aac_volume_free(v);
    aac_scorer_free(sc);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return rc;
}
