/* test_install.c - aaclip as a user gets it: `cmake --install` into a fresh prefix, then, with
 * that prefix moved elsewhere (so nothing can come from the build tree) and a clean
 * environment:
 *   - the layout: bin/aaclip, lib/libaaclip.so.<major.minor> with that SONAME (public symbols
 *     only) and libaaclip.a, the public headers, aaclip.pc, the CMake package, share/aaclip (the
 *     tokenizer, the demo model, the sample study), the man page, the Slicer module; no path of
 *     the build or source tree inside the installed programs and libraries;
 *   - the installed aaclip writes the sample study and scores it with the demo model it finds
 *     in its own prefix (saying so), and aaclip-slicer describes itself;
 *   - the example (docs/examples/score_volume.c) builds against the installed library with
 *     pkg-config (shared and static) and with CMake (aaclip::aaclip, aaclip::aaclip_static),
 *     runs on a DICOM series (writes a SEG that reads back) and on a NIfTI volume, and reports
 *     what `aaclip score` reports for the same input. */
#define _GNU_SOURCE /* memmem */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char g_dir[] = "/tmp/aac_test_install_XXXXXX";
static char g_prefix[512];

static int run(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *P(const char *fmt, ...) {
    static char buf[8][2048];
    static int slot;
    char *p = buf[slot++ & 7], rel[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(p, 2048, "%s/%s", g_dir, rel);
    return p;
}

static const char *I(const char *rel) { /* inside the (moved) prefix */
    static char buf[8][2048];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 2048, "%s/%s", g_prefix, rel);
    return p;
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int file_contains(const char *path, const char *needle) {
    size_t n;
    char *s = tu_read_file(path, &n);
    int found = s && memmem(s, n, needle, strlen(needle)) != NULL;
    free(s);
    return found;
}

/* A clean environment for the installed programs: no AACLIP_* variable, no build tree nearby. */
#define ENV "env -i PATH=/usr/bin:/bin HOME='%s' "

static void check_layout(void) {
    printf("layout of the installed tree\n");
    const char *want[] = {"bin/aaclip", AACLIP_LIBDIR "/libaaclip.so", AACLIP_LIBDIR "/libaaclip.so." AACLIP_SOVERSION,
                          AACLIP_LIBDIR "/libaaclip.so." AACLIP_VERSION, AACLIP_LIBDIR "/libaaclip.a",
                          "include/aaclip.h", "include/aaclip_version.h", "include/aaclip_score.h",
                          "include/aaclip_dicom.h", "include/aaclip_outputs.h", "include/aaclip_synth.h",
                          "include/aaclip_train.h", "include/aaclip_eval.h", "include/aaclip_data.h",
                          AACLIP_LIBDIR "/pkgconfig/aaclip.pc", AACLIP_LIBDIR "/cmake/aaclip/aaclipConfig.cmake",
                          AACLIP_LIBDIR "/cmake/aaclip/aaclipConfigVersion.cmake",
                          AACLIP_LIBDIR "/cmake/aaclip/aaclipTargets.cmake",
                          "share/aaclip/bpe_simple_vocab_16e6.txt.gz", "share/aaclip/demo-model/model.json",
                          "share/aaclip/demo-model/clip.safetensors", "share/aaclip/sample-study/dicom/IM0001.dcm",
                          "share/man/man1/aaclip.1.gz", "lib/aaclip/slicer/aaclip-slicer", "lib/aaclip/plugins",
                          "share/doc/aaclip/copyright", "share/doc/aaclip/examples/score_volume.c"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECK(exists(I(want[i])), "%s not installed", want[i]);
    CHECK(!exists(I("include/error.h")) && !exists(I("include/fsutil.h")) && !exists(I("include/score_internal.h")),
          "internal headers installed");
    CHECK(run("readelf -d '%s' | grep -q 'SONAME.*\\[libaaclip.so." AACLIP_SOVERSION "\\]'",
              I(AACLIP_LIBDIR "/libaaclip.so")) == 0, "SONAME is not libaaclip.so." AACLIP_SOVERSION);
    CHECK(run("nm -D --defined-only '%s' | awk '{print $3}' | grep -qv '^aac_'", I(AACLIP_LIBDIR "/libaaclip.so")) == 1,
          "libaaclip.so exports symbols other than aac_*");
    CHECK(run("nm -D --defined-only '%s' | grep -q ' T aac_score_volume$'", I(AACLIP_LIBDIR "/libaaclip.so")) == 0,
          "aac_score_volume is not exported");
    CHECK(run("gzip -dc '%s' | head -c 200 | grep -q 'TH AACLIP'", I("share/man/man1/aaclip.1.gz")) == 0, "man page");
    /* nothing of the build or the sources inside the product (paths, RPATHs) */
    const char *bins[] = {"bin/aaclip", AACLIP_LIBDIR "/libaaclip.so", "lib/aaclip/slicer/aaclip-slicer"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(!file_contains(I(bins[i]), AACLIP_BINARY_DIR) && !file_contains(I(bins[i]), AACLIP_SOURCE_DIR),
              "%s holds a path of the build or source tree", bins[i]);
        CHECK(run("readelf -d '%s' | grep -qE 'RPATH|RUNPATH'", I(bins[i])) == 1, "%s has an RPATH", bins[i]);
    }
}

/* The installed programs, from the moved prefix, in a clean environment. */
static void check_programs(void) {
    printf("the installed aaclip, moved to %s\n", g_prefix);
    CHECK(run(ENV "'%s' --version | grep -qx 'aaclip " AACLIP_VERSION "'", g_dir, I("bin/aaclip")) == 0, "--version");
    CHECK(run("cd '%s' && " ENV "'%s' make-sample-study -o '%s' --slices 12 > /dev/null", g_dir, g_dir,
              I("bin/aaclip"), P("study")) == 0, "make-sample-study");
    int st = run("cd '%s' && " ENV "'%s' score '%s' -o '%s' --quiet --threads 2 2> '%s'", g_dir, g_dir,
                 I("bin/aaclip"), P("study/dicom"), P("score"), P("score.err"));
    CHECK(st == 0, "aaclip score exited %d (%s)", st, P("score.err"));
    char demo[2100];
    snprintf(demo, sizeof demo, "DEMO model (%s/share/aaclip/demo-model)", g_prefix);
    CHECK(file_contains(P("score.err"), demo), "the demo model of the installed prefix is not announced (%s)",
          P("score.err"));
    json_t *s = json_load_file(P("score/summary.json"), 0, NULL);
    json_t *row = json_array_get(json_object_get(s, "series"), 0);
    CHECK(s && json_is_string(json_object_get(s, "demo_model")), "summary.json does not flag the demo model");
    CHECK(row && !strcmp(json_string_value(json_object_get(row, "status")), "done") &&
              json_integer_value(json_object_get(row, "slices_scored")) > 0, "the series was not scored");
    const char *model = json_string_value(json_object_get(s, "model"));
    CHECK(model && !strncmp(model, g_prefix, strlen(g_prefix)), "model %s is not the installed one", model);
    json_decref(s);
    CHECK(run(ENV "'%s' --xml | /usr/bin/python3 '%s/slicer/tests/check_cli_xml.py' /dev/stdin > /dev/null", g_dir,
              I("lib/aaclip/slicer/aaclip-slicer"), AACLIP_SOURCE_DIR) == 0, "installed aaclip-slicer --xml");
    /* without its data, the program says where it looked */
    CHECK(run("cp '%s' '%s' && " ENV "'%s' score '%s' -o '%s' --quiet 2> '%s'", I("bin/aaclip"), P("lonely-aaclip"),
              g_dir, P("lonely-aaclip"), P("study/dicom"), P("lonely"), P("lonely.err")) == 2 ||
              file_contains(P("lonely.err"), "give --model"),
          "a copy without its prefix does not refuse clearly");
    CHECK(run(ENV "AACLIP_DATA_DIR='%s' '%s' score '%s' -o '%s' --quiet --threads 2 2>/dev/null", g_dir,
              I("share/aaclip"), P("lonely-aaclip"), P("study/dicom"), P("lonely")) == 0,
          "AACLIP_DATA_DIR does not point a lone binary at its data");
}

/* One example binary on the DICOM study and on a NIfTI copy; what it prints equals summary.json. */
static void check_example(const char *exe, const char *how) {
    printf("  example (%s)\n", how);
    const char *out = P("ex_%s", how);
    CHECK(run("mkdir -p '%s/dcm' '%s/nii'", out, out) == 0, "mkdir");
    int st = run(ENV "'%s' '%s' '%s' '%s/dcm' scan > '%s/dcm.txt' 2>&1", g_dir, exe, I("share/aaclip/demo-model"),
                 P("study/dicom"), out, out);
    CHECK(st == 0, "%s on DICOM exited %d", how, st);
    st = run(ENV "'%s' '%s' '%s' '%s/nii' scan > '%s/nii.txt' 2>&1", g_dir, exe, I("share/aaclip/demo-model"),
             P("nifti/dicom.nii.gz"), out, out);
    CHECK(st == 0, "%s on NIfTI exited %d", how, st);
    char path[2200];
    snprintf(path, sizeof path, "%s/dcm.txt", out);
    FILE *f = fopen(path, "r");
    double score = NAN;
    int regions = -1;
    char seg[8] = "";
    if (!f || fscanf(f, "score %lf regions %d volume_ml %*f threshold %*f class \"scan\" seg %7s", &score, &regions,
                     seg) != 3)
        CHECK(0, "%s: unexpected output (%s)", how, path);
    if (f) fclose(f);
    json_t *s = json_load_file(P("score/summary.json"), 0, NULL);
    json_t *row = json_array_get(json_object_get(s, "series"), 0);
    const double want = json_number_value(json_object_get(row, "series_score"));
    CHECK(fabs(score - want) <= 1e-5 * fabs(want) && regions == json_integer_value(json_object_get(row, "regions")) &&
              !strcmp(seg, "yes"),
          "%s: score %g regions %d seg %s; aaclip score: %g, %lld", how, score, regions, seg, want,
          (long long)json_integer_value(json_object_get(row, "regions")));
    json_decref(s);
    snprintf(path, sizeof path, "%s/dcm/seg.dcm", out);
    CHECK(run("dcmdump +P 0008,0016 '%s' | grep -q SegmentationStorage", path) == 0, "%s: no SEG", how);
    snprintf(path, sizeof path, "%s/nii/label_map.nii.gz", out);
    CHECK(exists(path), "%s: no label map for the NIfTI input", how);
    snprintf(path, sizeof path, "%s/nii.txt", out);
    CHECK(file_contains(path, "seg no"), "%s: a SEG claimed for a volume file", how);
}

static void check_builds(void) {
    printf("the example against the installed library\n");
    CHECK(run(ENV "'%s' convert '%s' -o '%s/' > /dev/null 2>&1", g_dir, I("bin/aaclip"), P("study/dicom"),
              P("nifti")) == 0, "convert the study to NIfTI");
    CHECK(run("f=\"$(ls '%s'/*.nii* | head -1)\"; case \"$f\" in *.gz) cp \"$f\" '%s';; *) gzip -c \"$f\" > '%s';; "
              "esac", P("nifti"), P("nifti/dicom.nii.gz"), P("nifti/dicom.nii.gz")) == 0, "NIfTI copy");
    const char *src = AACLIP_SOURCE_DIR "/docs/examples/score_volume.c";
    const char *pc = "PKG_CONFIG_PATH='%s/" AACLIP_LIBDIR "/pkgconfig' pkg-config";
    char pkg[1024];
    snprintf(pkg, sizeof pkg, pc, g_prefix);
    /* pkg-config, shared: -laaclip alone */
    CHECK(run("%s --modversion aaclip | grep -qx " AACLIP_VERSION, pkg) == 0, "pkg-config --modversion");
    CHECK(run("cc -std=c11 -Wall -Wextra -Werror '%s' -o '%s' $(%s --cflags --libs aaclip) -Wl,-rpath,'%s/" AACLIP_LIBDIR
              "'", src, P("ex_pc"), pkg, g_prefix) == 0, "pkg-config build");
    CHECK(run("readelf -d '%s' | grep NEEDED | grep -v -e libaaclip -e libc.so -e libm.so | grep -q .", P("ex_pc")) == 1,
          "the shared build needs more than libaaclip");
    check_example(P("ex_pc"), "pkgconfig");
    /* pkg-config, static: the archive and the private dependencies */
    CHECK(run("cc -std=c11 '%s' -o '%s' $(%s --cflags aaclip) -L'%s/" AACLIP_LIBDIR "' -l:libaaclip.a "
              "$(%s --static --libs aaclip | sed 's/-laaclip//')", src, P("ex_pc_static"), pkg, g_prefix, pkg) == 0,
          "pkg-config --static build");
    CHECK(run("readelf -d '%s' | grep NEEDED | grep -q libaaclip", P("ex_pc_static")) == 1, "static build needs libaaclip.so");
    check_example(P("ex_pc_static"), "pkgconfig_static");
    /* CMake, shared and static */
    for (int st = 0; st <= 1; st++) {
        const char *b = P("cmake_%d", st);
        int rc = run("cmake -S '%s/docs/examples' -B '%s' -DCMAKE_PREFIX_PATH='%s' -DAACLIP_EXAMPLE_STATIC=%s "
                     "-DCMAKE_BUILD_TYPE=Release > '%s.log' 2>&1 && cmake --build '%s' >> '%s.log' 2>&1",
                     AACLIP_SOURCE_DIR, b, g_prefix, st ? "ON" : "OFF", b, b, b);
        CHECK(rc == 0, "CMake %s build (see %s.log)", st ? "static" : "shared", b);
        char exe[2100];
        snprintf(exe, sizeof exe, "%s/score_volume", b);
        CHECK(run("readelf -d '%s' | grep NEEDED | grep -q libaaclip", exe) == (st ? 1 : 0), "CMake %s: linkage",
              st ? "static" : "shared");
        check_example(exe, st ? "cmake_static" : "cmake");
    }
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    int st = run("cmake --install '%s' --prefix '%s' > '%s' 2>&1", AACLIP_BINARY_DIR, P("prefix"), P("install.log"));
    CHECK(st == 0, "cmake --install exited %d (see %s)", st, P("install.log"));
    if (st) return tu_finish("test_install");
    /* move the prefix: the product must not depend on where it was installed */
    CHECK(rename(P("prefix"), P("moved-prefix")) == 0, "rename");
    snprintf(g_prefix, sizeof g_prefix, "%s", P("moved-prefix"));
    check_layout();
    check_programs();
    check_builds();
    if (!tu_failures) run("rm -rf '%s'", g_dir);
    return tu_finish("test_install");
}
