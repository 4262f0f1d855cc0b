/* test_dicom_j2k.c - JPEG 2000 (issue 14, item 11): generated images (gen_j2k_sources.py:
 * 16-bit signed, 8-bit, 3-frame, RGB) encoded by GDCM (aaclip-j2k-fixture) decode with OpenJPEG
 * (j2k_decode.c) to exactly the uncompressed values, and so do copies with a frame split over
 * several fragments (padding after its end marker) and with the codestreams in JP2 files;
 * copies whose header disagrees with the codestream (rows, columns, bits, samples, frames, a cut
 * or garbled codestream header), a codestream cut short after its header, a first fragment that
 * is no codestream and a JP2 palette that decodes a grey codestream to colour are refused with a
 * message naming the file and the problem, before anything is decoded where the header already
 * tells (a disagreement corrupted the heap inside GDCM, the decoder before OpenJPEG; the test
 * runs under ASan with the unit tests). */
#include "dicom_test.h"

#include "aaclip_dicom.h"

static aac_volume *load_file(const char *path, aac_error *e) {
    const char *paths[] = {path};
    aac_scan *s = NULL;
    aac_volume *v = NULL;
    if (aac_scan_paths(paths, 1, &s, e) != AAC_OK) return NULL;
    if (aac_scan_series_count(s) == 1) aac_scan_load(s, 0, &v, e);
    else snprintf(e->message, sizeof e->message, "%s: %d series", path, aac_scan_series_count(s));
    aac_scan_free(s);
    return v;
}

int main(void) {
    dt_need_python("pydicom, numpy");
    char dir[3900], src[4096], j2k[4096], mut[4096];
    snprintf(dir, sizeof dir, "%.3800s", dt_scratch("j2k"));
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(j2k, sizeof j2k, "%s/j2k", dir);
    snprintf(mut, sizeof mut, "%s/mutants", dir);
    CHECK(dt_run(DT_PY " '%s/gen_j2k_sources.py' sources '%s'", AACLIP_DICOM_TESTS_DIR, src) == 0, "sources");
    CHECK(dt_run("mkdir -p '%s'", j2k) == 0, "mkdir");
    static const char *const names[] = {"mono16", "mono8", "multi3", "rgb8"};
    for (int i = 0; i < 4; i++) {
        char a[4200], b[4200];
        snprintf(a, sizeof a, "%s/%s.dcm", src, names[i]);
        snprintf(b, sizeof b, "%s/%s.dcm", j2k, names[i]);
        CHECK(dt_run("'%s' '%s' '%s'", AACLIP_J2K_FIXTURE_EXE, a, b) == 0, "encode %s", names[i]);
        aac_error e = {0};
        aac_volume *u = load_file(a, &e), *c = load_file(b, &e);
        CHECK(u && c, "%s: %s", names[i], e.message);
        if (u && c) {
            CHECK(!strcmp(c->transfer_syntax, "1.2.840.10008.1.2.4.90"), "%s: %s is not JPEG 2000", names[i],
                  c->transfer_syntax);
            /* GDCM's writer may restate the frames' geometry (one plane, 3 frames, as 3 slices):
             * the voxels, frame after frame, are what must be equal. */
            CHECK(aac_volume_voxel_count(u) == aac_volume_voxel_count(c) && u->dim[0] == c->dim[0] &&
                      u->dim[1] == c->dim[1] &&
                      !memcmp(u->voxels, c->voxels, aac_volume_voxel_count(u) * sizeof(float)),
                  "%s: JPEG 2000 values differ from the uncompressed image", names[i]);
        }
        aac_volume_free(u);
        aac_volume_free(c);
    }
    CHECK(dt_run(DT_PY " '%s/gen_j2k_sources.py' mutants '%s' '%s'", AACLIP_DICOM_TESTS_DIR, j2k, mut) == 0, "mutants");
    char list[4200], name[128], says[256];
    snprintf(list, sizeof list, "%s/mutants.txt", mut);
    FILE *f = fopen(list, "r");
    int n = 0;
    while (f && fscanf(f, "%127s %255[^\n]", name, says) == 2) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.dcm", mut, name);
        aac_error e = {0};
        aac_volume *v = load_file(path, &e);
        CHECK(v == NULL, "%s was decoded", name);
        CHECK(strstr(e.message, path) && strstr(e.message, "JPEG 2000") && strstr(e.message, says),
              "%s: the message does not name the file and say '%s': %s", name, says, e.message);
        aac_volume_free(v);
        n++;
    }
    if (f) fclose(f);
    CHECK(n == 17, "%d mutants", n);
    CHECK(dt_run(DT_PY " '%s/gen_j2k_sources.py' variants '%s' '%s'", AACLIP_DICOM_TESTS_DIR, j2k, mut) == 0,
          "variants");
    snprintf(list, sizeof list, "%s/variants.txt", mut);
    f = fopen(list, "r");
    n = 0;
    while (f && fscanf(f, "%127s %255s", name, says) == 2) {
        char path[4400], orig[4400];
        snprintf(path, sizeof path, "%s/%s.dcm", mut, name);
        snprintf(orig, sizeof orig, "%s/%s.dcm", src, says);
        aac_error e = {0};
        aac_volume *u = load_file(orig, &e), *c = load_file(path, &e);
        CHECK(u && c, "%s: %s", name, e.message);
        if (u && c)
            CHECK(aac_volume_voxel_count(u) == aac_volume_voxel_count(c) && u->dim[0] == c->dim[0] &&
                      u->dim[1] == c->dim[1] &&
                      !memcmp(u->voxels, c->voxels, aac_volume_voxel_count(u) * sizeof(float)),
                  "%s: JPEG 2000 values differ from the uncompressed image", name);
        aac_volume_free(u);
        aac_volume_free(c);
        n++;
    }
    if (f) fclose(f);
    CHECK(n == 5, "%d variants", n);
    return tu_finish("test_dicom_j2k");
}
