/* test_dicom_ref.c - acceptance against dcm2niix: `convert` must give the voxel values and affine
 * (1e-3 mm) of dcm2niix's NIfTI, compared in world space by compare_nifti.py (nibabel).
 * In the repository: eight slices of the sample study (a CT written with DCMTK) in six transfer
 * syntaxes made with DCMTK's own tools (explicit and implicit little endian, big endian, RLE,
 * JPEG lossless, JPEG-LS lossless), and a 4-D series written here byte by byte; the reference is
 * Debian's dcm2niix, run here on the uncompressed files (every lossless encoding must decode to
 * the same). With ../shared also every input of dcm_qa_ts, dcm_qa_nih and dcm_qa_enh against the
 * reference NIfTI in their Ref/ (scanner data in nine encodings, GE and Siemens 4-D, enhanced
 * multi-frame). */
#include "out_test.h"

static const char *ingest = AACLIP_INGEST_EXE;
static const char *compare = AACLIP_DICOM_TESTS_DIR "/compare_nifti.py";

/* Converts input into a fresh folder and compares against the reference files (a glob). */
static void check_case(const char *name, const char *input, const char *refs) {
    const char *out = dt_scratch(name);
    int st = dt_run("'%s' convert '%s' -o '%s/' > '%s.log' 2>&1", ingest, input, out, out);
    CHECK(st == 0, "%s: convert exited %d (see %s.log)", name, st, out);
    st = dt_run(DT_PY " '%s' '%s' %s", compare, out, refs);
    CHECK(st == 0, "%s: output differs from the dcm2niix reference", name);
}

/* The in-repository cases: DCMTK transcodings of sample-study slices and a 4-D series. */
static void in_repo(void) {
    char src[4096], ref[4096]; /* dt_scratch's buffers are reused: keep copies */
    snprintf(src, sizeof src, "%s", ot_sample_ct("ref_el", 10, 8));
    snprintf(ref, sizeof ref, "%s", dt_scratch("ref_dcm2niix"));
    /* name, DCMTK command (in, out), transfer syntax it must have written */
    static const char *const enc[][3] = {
        {"il", "dcmconv +ti", "LittleEndianImplicit"}, {"eb", "dcmconv +tb", "BigEndianExplicit"},
        {"rle", "dcmcrle", "RLELossless"},             {"jpll", "dcmcjpeg +e1", "JPEGLossless:Non-hierarchical-1stOrderPrediction"},
        {"jls", "dcmcjpls", "JPEGLSLossless"},
    };
    CHECK(dt_run("dcm2niix -z n -b n -f ct -o '%s' '%s' > '%s/dcm2niix.log' 2>&1", ref, src, ref) == 0,
          "dcm2niix on the sample slices (see %s/dcm2niix.log)", ref);
    char refs[4200], in[4200];
    snprintf(refs, sizeof refs, "'%s/ct.nii'", ref);
    check_case("sample_el", src, refs);
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        char name[32], dst[4096];
        snprintf(name, sizeof name, "enc_%s", enc[i][0]);
        snprintf(dst, sizeof dst, "%s", dt_scratch(name));
        snprintf(name, sizeof name, "sample_%s", enc[i][0]);
        CHECK(dt_run("for f in '%s'/*.dcm; do %s \"$f\" '%s'/\"$(basename \"$f\")\" || exit 1; done", src, enc[i][1],
                     dst) == 0, "%s: %s failed", name, enc[i][1]);
        snprintf(in, sizeof in, "%s/IM0010.dcm", dst);
        CHECK(dt_run("dcmdump +P 0002,0010 '%s' | grep -q '=%s '", in, enc[i][2]) == 0, "%s: not %s", name, enc[i][2]);
        check_case(name, dst, refs);
    }
    /* 4-D: four positions x three temporal positions */
    char s4[4096], r4[4096];
    snprintf(s4, sizeof s4, "%s", dt_scratch("ref_4d_src"));
    snprintf(r4, sizeof r4, "%s", dt_scratch("ref_4d_dcm2niix"));
    static const double z4[] = {0, 4, 8, 12};
    const ot_ct ct4 = {.n = 4, .rows = 40, .cols = 56, .z = z4, .ps = 1.5, .nt = 3};
    ot_write_ct(s4, &ct4);
    CHECK(dt_run("dcm2niix -z n -b n -f t4 -o '%s' '%s' > '%s/dcm2niix.log' 2>&1", r4, s4, r4) == 0, "dcm2niix 4-D");
    char refs4[4200];
    snprintf(refs4, sizeof refs4, "'%s/t4.nii'", r4);
    check_case("gen_4d", s4, refs4);
    /* The comparison must be able to fail: the 4-D output is not the CT reference. */
    const char *neg = dt_scratch("negative_repo");
    int st = dt_run("cp '%s'/dicom_test_out/" AACLIP_TEST_NAME "/gen_4d/*.nii* '%s/' && " DT_PY " '%s' '%s' %s >/dev/null", AACLIP_BINARY_DIR,
                    neg, compare, neg, refs);
    CHECK(st == 1, "negative control: compare_nifti.py accepted a different series (status %d)", st);
}

/* With ../shared: dcm2niix's own reference outputs of dcm_qa_ts, dcm_qa_nih and dcm_qa_enh. */
static void shared_corpora(void) {
    const char *ts = tu_shared_opt("dicom/dcm_qa_ts");
    const char *nih = tu_shared_opt("dicom/dcm_qa_nih");
    const char *enh = tu_shared_opt("dicom/dcm_qa_enh");
    char in[4096], refs[4096], name[64];
    /* One Siemens mosaic in nine transfer syntaxes (RLE, JPEG, JPEG-LS, JPEG 2000, big endian). */
    for (int i = 1; ts && i <= 9; i++) {
        snprintf(in, sizeof in, "%s/In/%d.dcm", ts, i);
        snprintf(refs, sizeof refs, "'%s/Ref/%d.nii'", ts, i);
        snprintf(name, sizeof name, "ts%d", i);
        check_case(name, in, refs);
    }
    if (nih) {
        /* GE 2-D EPI (150 files per series, README files inside) and Siemens mosaics, all 4-D. */
        snprintf(in, sizeof in, "%s/In", nih);
        snprintf(refs, sizeof refs, "'%s'/Ref/*.nii", nih);
        check_case("nih", in, refs);
        /* The comparison must be able to fail: series 5's output is not reference 4. */
        const char *neg = dt_scratch("negative");
        char out5[4096];
        snprintf(out5, sizeof out5, "%s/dicom_test_out/" AACLIP_TEST_NAME "/nih/5_Axial_EPI-FMRI__Sequential_I_to_S_.nii", AACLIP_BINARY_DIR);
        int st = dt_run("cp '%s' '%s/' && " DT_PY " '%s' '%s' '%s/Ref/DCM2NIIX_regression_test_4.nii' >/dev/null",
                        out5, neg, compare, neg, nih);
        CHECK(st == 1, "negative control: compare_nifti.py accepted a different series (status %d)", st);
    }
    if (enh) {
        /* Enhanced multi-frame: Philips magnitude + field map in one file, Siemens XA10 4-D. */
        snprintf(in, sizeof in, "%s/In/Philips", enh);
        snprintf(refs, sizeof refs, "'%s'/Ref/Philips*.nii", enh);
        check_case("enh_philips", in, refs);
        snprintf(in, sizeof in, "%s/In/Siemens", enh);
        snprintf(refs, sizeof refs, "'%s'/Ref/Siemens*.nii", enh);
        check_case("enh_siemens", in, refs);
    }
}

int main(void) {
    dt_need_python("nibabel, numpy");
    in_repo();
    shared_corpora();
    return tu_finish("test_dicom_ref");
}
