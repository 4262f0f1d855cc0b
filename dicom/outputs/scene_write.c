/* scene_write.c - a 3D Slicer scene (scene.mrml, libxml2) over the NRRD files of
 * aac_write_images, laid out as Slicer 5 saves scenes: one storage node per file, a display node
 * per volume, data nodes referring to both ("references" role lists), colour tables as file
 * nodes with their own storage, and the three slice views compositing the input (background),
 * the anomaly map (colour-mapped foreground, transparent below p = 0.1) and the label map.
 * Every node the scene refers to is in the scene, every file beside it: nothing depends on
 * Slicer's built-in colour nodes. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "error.h"
#include "outputs.h"

/* Colour tables, in the text format Slicer reads (label name R G B A). */
static aac_status write_ctbl(const char *dir, const char *name, int kind, int n_labels, const double *thr,
                             aac_error *err) {
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st != AAC_OK) return st;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write", path);
    }
    fprintf(f, "# Color table written by aaclip %s\n", aac_version());
    if (kind == 0) { /* grey ramp */
        for (int i = 0; i < 256; i++) fprintf(f, "%d grey%d %d %d %d 255\n", i, i, i, i, i);
    } else if (kind == 1) { /* heat: black - red - yellow - white */
        for (int i = 0; i < 256; i++) {
            const double x = i / 255.0;
            const int r = (int)lround(255 * fmin(1, 3 * x)), g = (int)lround(255 * fmin(1, fmax(0, 3 * x - 1))),
                      b = (int)lround(255 * fmin(1, fmax(0, 3 * x - 2)));
            fprintf(f, "%d heat%d %d %d %d 255\n", i, i, r, g, b);
        }
    } else { /* labels: background, then one per threshold, red getting darker */
        fprintf(f, "0 background 0 0 0 0\n");
        for (int k = 1; k <= n_labels; k++) {
            const int shade = (int)lround(255 * (1.0 - 0.6 * (k - 1) / (n_labels > 1 ? n_labels - 1 : 1)));
            fprintf(f, "%d anomaly_p>=%g %d 26 26 255\n", k, thr[k - 1], shade);
        }
    }
    if (fclose(f) != 0) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write", path);
    }
    return fs_commit(tmp, path, err);
}

static xmlNodePtr node(xmlNodePtr root, const char *tag, const char *id, const char *name) {
    xmlNodePtr n = xmlNewChild(root, NULL, BAD_CAST tag, NULL);
    xmlNewProp(n, BAD_CAST "id", BAD_CAST id);
    xmlNewProp(n, BAD_CAST "name", BAD_CAST name);
    return n;
}

static void prop(xmlNodePtr n, const char *key, const char *fmt, ...) AAC_PRINTF(3, 4);
static void prop(xmlNodePtr n, const char *key, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    xmlNewProp(n, BAD_CAST key, BAD_CAST buf);
}

static void storage(xmlNodePtr root, int i, const char *file) {
    char id[64];
    snprintf(id, sizeof id, "vtkMRMLVolumeArchetypeStorageNode%d", i);
    xmlNodePtr n = node(root, "VolumeArchetypeStorage", id, "VolumeArchetypeStorage");
    prop(n, "hideFromEditors", "true");
    prop(n, "fileName", "%s", file);
    prop(n, "useCompression", "1");
    prop(n, "defaultWriteFileExtension", "nrrd");
    prop(n, "readState", "0");
    prop(n, "writeState", "0");
    prop(n, "centerImage", "0");
    prop(n, "UseOrientationFromFile", "1");
}

static void color_table(xmlNodePtr root, int i, const char *name, const char *file, int n) {
    char id[64], sid[64], refs[128];
    snprintf(sid, sizeof sid, "vtkMRMLColorTableStorageNode%d", i);
    snprintf(id, sizeof id, "vtkMRMLColorTableNode%d", i);
    xmlNodePtr s = node(root, "ColorTableStorage", sid, "ColorTableStorage");
    prop(s, "hideFromEditors", "true");
    prop(s, "fileName", "%s", file);
    prop(s, "useCompression", "1");
    prop(s, "defaultWriteFileExtension", "ctbl");
    prop(s, "readState", "0");
    prop(s, "writeState", "0");
    xmlNodePtr c = node(root, "ColorTable", id, name);
    snprintf(refs, sizeof refs, "storage:%s;", sid);
    prop(c, "hideFromEditors", "false");
    prop(c, "attributes", "Category:File");
    prop(c, "references", "%s", refs);
    prop(c, "type", "14"); /* vtkMRMLColorTableNode::File */
    prop(c, "numcolors", "%d", n);
}

/* Volume (or label map) node with Slicer's RAS geometry; the file's header wins on load
 * (UseOrientationFromFile) but the node states the same. */
static void volume(xmlNodePtr root, const char *tag, const char *id, const char *name, const char *display,
                   int storage_i, const aac_volume *v) {
    xmlNodePtr n = node(root, tag, id, name);
    prop(n, "hideFromEditors", "false");
    prop(n, "references", "display:%s;storage:vtkMRMLVolumeArchetypeStorageNode%d;", display, storage_i);
    prop(n, "spacing", "%.17g %.17g %.17g", v->spacing[0], v->spacing[1], v->spacing[2]);
    /* LPS -> RAS: negate the first two rows (+ 0.0 turns -0 into 0). */
    prop(n, "origin", "%.17g %.17g %.17g", -v->origin[0] + 0.0, -v->origin[1] + 0.0, v->origin[2]);
    const double *d = v->direction;
    prop(n, "ijkToRASDirections", "%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g", -d[0] + 0.0, -d[1] + 0.0,
         -d[2] + 0.0, -d[3] + 0.0, -d[4] + 0.0, -d[5] + 0.0, d[6], d[7], d[8]);
}

static void display(xmlNodePtr root, const char *tag, const char *id, const char *color, double window, double level,
                    int threshold, double lower) {
    xmlNodePtr n = node(root, tag, id, tag);
    prop(n, "hideFromEditors", "true");
    prop(n, "visibility", "true");
    prop(n, "colorNodeID", "%s", color);
    if (!strcmp(tag, "VolumeDisplay")) {
        prop(n, "window", "%.9g", window);
        prop(n, "level", "%.9g", level);
        prop(n, "autoWindowLevel", "0");
        prop(n, "interpolate", "1");
        prop(n, "applyThreshold", "%d", threshold);
        prop(n, "lowerThreshold", "%.9g", threshold ? lower : -1e30);
        prop(n, "upperThreshold", "1e+30");
    }
}

static aac_status need_file(const char *dir, const char *name, aac_error *err) {
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &sb) != 0)
        return aac_fail(err, AAC_ERR_MISSING, "%s: missing (the scene refers to it; write the images first)", path);
    return AAC_OK;
}

aac_status aac_write_scene(const aac_results *r, const char *dir, aac_error *err) {
    aac_status st = out_check(r, 0, "scene", err);
    if (st != AAC_OK) return st;
    if (!dir) return aac_fail(err, AAC_ERR_ARG, "aac_write_scene: no folder");
    const char *files[] = {"input.nrrd", "anomaly_map.nrrd", "label_map.nrrd"};
    for (int i = 0; i < 3; i++)
        if ((st = need_file(dir, files[i], err)) != AAC_OK) return st;
    const aac_volume *v = r->source;
    double thr[AAC_MAX_THRESHOLDS], lo, hi;
    const int nt = aac_results_thresholds(r, thr);
    aac_results_range(r, &lo, &hi);
    aac_norm_params np = aac_norm_default_params();
    np.axis = 2;
    aac_norm norm;
    if ((st = aac_volume_norm(v, r->t, &np, &norm, err)) != AAC_OK) return st;
    if ((st = write_ctbl(dir, "grey.ctbl", 0, 0, thr, err)) != AAC_OK ||
        (st = write_ctbl(dir, "anomaly_heat.ctbl", 1, 0, thr, err)) != AAC_OK ||
        (st = write_ctbl(dir, "anomaly_labels.ctbl", 2, nt, thr, err)) != AAC_OK)
        return st;

    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = xmlNewNode(NULL, BAD_CAST "MRML");
    xmlDocSetRootElement(doc, root);
    xmlNewProp(root, BAD_CAST "version", BAD_CAST "Slicer4.4.0");
    xmlNewProp(root, BAD_CAST "userTags", BAD_CAST "");
    color_table(root, 1, "aaclip grey", "grey.ctbl", 256);
    color_table(root, 2, "aaclip anomaly heat", "anomaly_heat.ctbl", 256);
    color_table(root, 3, "aaclip anomaly labels", "anomaly_labels.ctbl", nt + 1);
    for (int i = 0; i < 3; i++) storage(root, i + 1, files[i]);
    display(root, "VolumeDisplay", "vtkMRMLScalarVolumeDisplayNode1", "vtkMRMLColorTableNode1", norm.high - norm.low,
            (norm.high + norm.low) / 2, 0, 0);
    volume(root, "Volume", "vtkMRMLScalarVolumeNode1", "input", "vtkMRMLScalarVolumeDisplayNode1", 1, v);
    /* The map in raw scores: window = the probability range, hidden below p = 0.1. */
    const double span = hi > lo ? hi - lo : 1.0;
    display(root, "VolumeDisplay", "vtkMRMLScalarVolumeDisplayNode2", "vtkMRMLColorTableNode2", span,
            lo + span / 2, 1, lo + 0.1 * span);
    volume(root, "Volume", "vtkMRMLScalarVolumeNode2", "anomaly_map", "vtkMRMLScalarVolumeDisplayNode2", 2, v);
    display(root, "LabelMapVolumeDisplay", "vtkMRMLLabelMapVolumeDisplayNode1", "vtkMRMLColorTableNode3", 0, 0, 0, 0);
    volume(root, "LabelMapVolume", "vtkMRMLLabelMapVolumeNode1", "anomaly_labels", "vtkMRMLLabelMapVolumeDisplayNode1",
           3, v);
    xmlNodePtr sel = node(root, "Selection", "vtkMRMLSelectionNodeSingleton", "Selection");
    prop(sel, "singletonTag", "Singleton");
    prop(sel, "references",
         "ActiveVolume:vtkMRMLScalarVolumeNode1;SecondaryVolume:vtkMRMLScalarVolumeNode2;"
         "ActiveLabelVolume:vtkMRMLLabelMapVolumeNode1;");
    const char *views[] = {"Red", "Yellow", "Green"};
    for (int i = 0; i < 3; i++) {
        char id[64];
        snprintf(id, sizeof id, "vtkMRMLSliceCompositeNode%s", views[i]);
        xmlNodePtr n = node(root, "SliceComposite", id, "SliceComposite");
        prop(n, "hideFromEditors", "true");
        prop(n, "singletonTag", "%s", views[i]);
        prop(n, "references",
             "backgroundVolume:vtkMRMLScalarVolumeNode1;foregroundVolume:vtkMRMLScalarVolumeNode2;"
             "labelVolume:vtkMRMLLabelMapVolumeNode1;");
        prop(n, "compositing", "0");
        prop(n, "foregroundOpacity", "0.5");
        prop(n, "labelOpacity", "0.6");
        prop(n, "linkedControl", "1");
        prop(n, "layoutName", "%s", views[i]);
        prop(n, "doPropagateVolumeSelection", "1");
    }

    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/scene.mrml", dir);
    st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st == AAC_OK && xmlSaveFormatFileEnc(tmp, doc, "UTF-8", 1) < 0) {
        fs_discard(tmp);
        st = aac_fail(err, AAC_ERR_IO, "%s: cannot write", path);
    }
    xmlFreeDoc(doc);
    if (st != AAC_OK) return st;
    return fs_commit(tmp, path, err);
}
