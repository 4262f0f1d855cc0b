/* test_out_images.c - NIfTI/NRRD images, the 3D Slicer scene and the PNG montage, through
 * aac_write_outputs, for DICOM sources (ct-3slice, the 4-D GE series, the tilted CT) and for a
 * NIfTI source. Images overlay the input: nibabel (NIfTI) and the NRRD header give the affine of
 * the NIfTI the converter writes for the same input, within 1e-4 mm; values read back equal.
 * The scene parses with libxml2, every node reference resolves inside it and every file it names
 * exists. The montage is a PNG of the expected size with the overlay drawn. A volume file gets
 * no DICOM objects and a note saying why; a scene without its images is refused. */
#include "out_test.h"

#include <dirent.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <png.h>

/* ---- scene checks */
typedef struct idset { char ids[256][96]; int n; } idset;

static int has_id(const idset *s, const char *id) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->ids[i], id)) return 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Resolves "role:id id;role:id;" lists. */
static void check_refs(const char *scene, const idset *ids, const char *refs, int *checked) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", refs);
    for (char *role = strtok(buf, ";"); role; role = strtok(NULL, ";")) {
        char *colon = strchr(role, ':');
        CHECK(colon, "%s: malformed references entry '%s'", scene, role);
        if (!colon) continue;
        for (char *id = colon + 1; *id;) {
            char one[96];
            int used = 0;
            if (sscanf(id, "%95s%n", one, &used) != 1) break;
            CHECK(has_id(ids, one), "%s: reference to %s does not resolve", scene, one);
            (*checked)++;
            id += used;
            while (*id == ' ') id++;
        }
    }
}

static void check_scene(const char *dir, int nt) {
    char scene[4096];
    snprintf(scene, sizeof scene, "%s/scene.mrml", dir);
    xmlDocPtr doc = xmlReadFile(scene, NULL, XML_PARSE_NONET);
    CHECK(doc != NULL, "%s: libxml2 cannot parse it", scene);
    if (!doc) return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    CHECK(root && !xmlStrcmp(root->name, BAD_CAST "MRML"), "%s: root is not <MRML>", scene);
    idset ids = {.n = 0};
    int count[8] = {0};
    const char *tags[] = {"Volume", "LabelMapVolume", "VolumeDisplay", "LabelMapVolumeDisplay",
                          "VolumeArchetypeStorage", "ColorTable", "ColorTableStorage", "SliceComposite"};
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        xmlChar *id = xmlGetProp(n, BAD_CAST "id");
        CHECK(id && ids.n < 256, "%s: <%s> without id", scene, n->name);
        if (id && ids.n < 256) snprintf(ids.ids[ids.n++], 96, "%s", (char *)id);
        xmlFree(id);
        for (int t = 0; t < 8; t++) count[t] += !xmlStrcmp(n->name, BAD_CAST tags[t]);
    }
    const int want[8] = {2, 1, 2, 1, 3, 3, 3, 3};
    for (int t = 0; t < 8; t++)
        CHECK(count[t] == want[t], "%s: %d <%s> nodes, %d expected", scene, count[t], tags[t], want[t]);
    int refs = 0, files = 0;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        for (xmlAttrPtr a = n->properties; a; a = a->next) {
            xmlChar *val = xmlGetProp(n, a->name);
            const char *k = (const char *)a->name, *v = (const char *)val;
            if (!strcmp(k, "references")) {
                check_refs(scene, &ids, v, &refs);
            } else if (ends_with(k, "NodeID") || ends_with(k, "NodeRef") || ends_with(k, "VolumeID")) {
                if (v[0]) {
                    CHECK(has_id(&ids, v), "%s: %s=%s does not resolve", scene, k, v);
                    refs++;
                }
            } else if (!strcmp(k, "fileName")) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", dir, v);
                struct stat sb;
                CHECK(stat(path, &sb) == 0 && sb.st_size > 0, "%s: file %s does not exist", scene, path);
                files++;
            }
            xmlFree(val);
        }
    }
    CHECK(refs >= 15 && files == 6, "%s: %d references and %d files checked", scene, refs, files);
    printf("scene %s: %d nodes, %d references resolve, %d files exist\n", scene, ids.n, refs, files);
    xmlFreeDoc(doc);
    /* The label colour table has the background and one entry per threshold. */
    char ctbl[4096], buf[4096];
    snprintf(ctbl, sizeof ctbl, "%s/anomaly_labels.ctbl", dir);
    FILE *f = fopen(ctbl, "r");
    int lines = 0;
    while (f && fgets(buf, sizeof buf, f))
        if (buf[0] != '#') lines++;
    if (f) fclose(f);
    CHECK(lines == nt + 1, "%s: %d entries for %d thresholds", ctbl, lines, nt);
}

/* ---- PNG: size (the layout of docs/outputs.md), and the overlay is there (coloured pixels) */
static void montage_size(int w, int h, int cols, int rows, int *W, int *H) {
    const int s = w < 192 ? ((192 + w - 1) / w > 8 ? 8 : (192 + w - 1) / w) : 1, t = w * s >= 512 ? 2 : 1;
    *W = cols * w * s + 4 * (cols - 1) + 8 + 56 * t;
    *H = rows * (11 * t + h * s) + 4 * (rows - 1);
}

static void check_png(const char *path, int W, int H) {
    FILE *f = fopen(path, "rb");
    CHECK(f, "%s: missing", path);
    if (!f) return;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int colour = 0;
    if (!setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        const int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
        CHECK(w == W && h == H && png_get_color_type(png, info) == PNG_COLOR_TYPE_RGB, "%s: %d x %d, %d x %d expected",
              path, w, h, W, H);
        png_bytepp rows = png_get_rows(png, info);
        /* in the tiles only: the colour bar on the right (at most 120 px) is always coloured */
        for (int y = 0; y < h && w == W; y++)
            for (int x = 0; x < w - 120; x++) colour += rows[y][3 * x] != rows[y][3 * x + 1];
    } else {
        CHECK(0, "%s: libpng cannot read it", path);
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    CHECK(colour > 0, "%s: no overlay drawn", path);
}

static int count_suffix(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += ends_with(e->d_name, suffix) || (suffix[0] == '*' && strstr(e->d_name, ".tmp-"));
    if (d) closedir(d);
    return n;
}

/* Values and geometry of the images against the results and the converter's NIfTI. */
static void check_images(const char *out, const aac_results *r) {
    const aac_volume *v = r->source;
    const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    char ref[4096], path[4096];
    snprintf(ref, sizeof ref, "%s/converter_input.nii.gz", out);
    aac_error e = {0};
    CHECK_OK(aac_volume_write_nifti(v, ref, &e), &e);
    const char *names[] = {"anomaly_map.nii.gz", "anomaly_map.nrrd", "label_map.nii.gz", "label_map.nrrd", "input.nrrd"};
    uint8_t *labels = malloc(n);
    CHECK_OK(aac_results_labels(r, labels, &e), &e);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", out, names[i]);
        CHECK(dt_run(DT_PY " '%s' affine '%s' '%s' 1e-4", OT_CHECK_PY, path, ref) == 0,
              "%s does not overlay the converter's NIfTI", path);
        aac_volume *w = NULL;
        CHECK_OK(aac_volume_read(path, &w, &e), &e);
        CHECK(w->dim[0] == v->dim[0] && w->dim[1] == v->dim[1] && w->dim[2] == v->dim[2] && w->dim[3] == 1,
              "%s: %d x %d x %d x %d", path, w->dim[0], w->dim[1], w->dim[2], w->dim[3]);
        const float *want = i < 2 ? r->map : i < 4 ? NULL : v->voxels + (size_t)r->t * n;
        size_t bad = 0;
        for (size_t j = 0; j < n && w->dim[2] == v->dim[2]; j++)
            bad += want ? w->voxels[j] != want[j] : w->voxels[j] != (float)labels[j];
        CHECK(bad == 0, "%s: %zu voxels differ", path, bad);
        aac_volume_free(w);
    }
    free(labels);
}

static void run_dicom(const ot_case *c) {
    aac_results r;
    ot_results(c, &r);
    aac_output_params p = aac_output_default_params();
    p.model_hash = "sha256:0123456789abcdef";
    p.montage_slices = 4;
    p.montage_columns = 2;
    char name[64], note[512], png[4096];
    snprintf(name, sizeof name, "all_%.50s", c->name);
    const char *out = dt_scratch(name);
    aac_error e = {0};
    CHECK_OK(aac_write_outputs(&r, &p, out, note, sizeof note, &e), &e);
    CHECK(note[0] == '\0', "%s: note for a DICOM source: %s", name, note);
    CHECK(count_suffix(out, ".dcm") == 4 && count_suffix(out, "*") == 0, "%s: %d DICOM files, %d temporaries", name,
          count_suffix(out, ".dcm"), count_suffix(out, "*"));
    check_images(out, &r);
    double thr[AAC_MAX_THRESHOLDS];
    check_scene(out, aac_results_thresholds(&r, thr));
    const int n = r.source->dim[2] < 4 ? r.source->dim[2] : 4, cols = n < 2 ? n : 2, rows = (n + cols - 1) / cols;
    snprintf(png, sizeof png, "%s/montage.png", out);
    int mw, mh;
    montage_size(r.source->dim[0], r.source->dim[1], cols, rows, &mw, &mh);
    check_png(png, mw, mh);
    /* Rerun over the same folder: replaced, nothing left over. */
    CHECK_OK(aac_write_outputs(&r, &p, out, note, sizeof note, &e), &e);
    CHECK(count_suffix(out, ".dcm") == 4 && count_suffix(out, "*") == 0, "%s: rerun left %d DICOM files", name,
          count_suffix(out, ".dcm"));
    ot_results_free(&r);
}

static void run_nifti(void) {
    const char *out = dt_scratch("all_nifti");
    char nii[4096], dir[3072], note[512];
    snprintf(nii, sizeof nii, "%s/ct.nii.gz", out);
    snprintf(dir, sizeof dir, "%s/results", out);
    aac_error e = {0};
    aac_volume *dv = ot_load(ot_sample_ct("all_nifti_src", 14, 3)), *v = NULL;
    CHECK_OK(aac_volume_write_nifti(dv, nii, &e), &e);
    aac_volume_free(dv);
    CHECK_OK(aac_volume_read(nii, &v, &e), &e);
    const ot_blob b[] = {{0.4, 0.5, 0.5, 20, 1.0}};
    aac_results r = {.source = v, .map = ot_blob_map(v, 0, b, 1, 0.1), .series_score = NAN};
    aac_output_params p = aac_output_default_params();
    CHECK_OK(aac_write_outputs(&r, &p, dir, note, sizeof note, &e), &e);
    CHECK(strstr(note, "need a DICOM input") && strstr(note, "ct.nii.gz"), "note: %s", note);
    printf("volume file note: %s\n", note);
    CHECK(count_suffix(dir, ".dcm") == 0, "DICOM objects written for a volume file");
    char path[4096];
    const char *names[] = {"anomaly_map.nii.gz", "label_map.nii.gz", "anomaly_map.nrrd", "input.nrrd"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CHECK(dt_run(DT_PY " '%s' affine '%s' '%s' 1e-4", OT_CHECK_PY, path, nii) == 0, "%s does not overlay %s", path,
              nii);
    }
    check_scene(dir, 1);
    snprintf(path, sizeof path, "%s/montage.png", dir);
    int mw, mh;
    montage_size(v->dim[0], v->dim[1], 3, 1, &mw, &mh);
    check_png(path, mw, mh);
    /* DICOM writers refuse, saying why. */
    snprintf(path, sizeof path, "%s/pmap.dcm", dir);
    CHECK(aac_write_pmap(&r, &p, path, &e) == AAC_ERR_UNSUPPORTED && strstr(e.message, "DICOM input"), "pmap: %s",
          e.message);
    /* A scene without its images: refused, no scene file. */
    const char *empty = dt_scratch("all_noimages");
    CHECK(aac_write_scene(&r, empty, &e) == AAC_ERR_MISSING && strstr(e.message, "input.nrrd"), "scene: %s", e.message);
    CHECK(count_suffix(empty, ".mrml") == 0 && count_suffix(empty, "*") == 0, "a refused scene left files");
    free((float *)r.map);
    aac_volume_free(v);
}

int main(void) {
    dt_need_python("nibabel, numpy");
    ot_case cases[OT_MAX_CASES];
    const int n = ot_cases(cases);
    for (int i = 0; i < n; i++) run_dicom(&cases[i]);
    run_nifti();
    return tu_finish("test_out_images");
}
