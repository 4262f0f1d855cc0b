/* test_dicom_ref.c - acceptance against dcm2niix: `convert` on every input of dcm_qa_ts,
 * dcm_qa_nih and dcm_qa_enh must give the voxel values and affine (1e-3 mm) of the reference
 * NIfTI in Ref/, compared in world space by compare_nifti.py (nibabel). */
#include "dicom_test.h"

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

int main(void) {
    dt_need_python("nibabel, numpy");
    const char *ts = tu_shared("dicom/dcm_qa_ts");
    const char *nih = tu_shared("dicom/dcm_qa_nih");
    const char *enh = tu_shared("dicom/dcm_qa_enh");
    char in[4096], refs[4096], name[64];
    /* One Siemens mosaic in nine transfer syntaxes (RLE, JPEG, JPEG-LS, JPEG 2000, big endian). */
    for (int i = 1; i <= 9; i++) {
        snprintf(in, sizeof in, "%s/In/%d.dcm", ts, i);
        snprintf(refs, sizeof refs, "'%s/Ref/%d.nii'", ts, i);
        snprintf(name, sizeof name, "ts%d", i);
        check_case(name, in, refs);
    }
    /* GE 2-D EPI (150 files per series, README files inside) and Siemens mosaics, all 4-D. */
    snprintf(in, sizeof in, "%s/In", nih);
    snprintf(refs, sizeof refs, "'%s'/Ref/*.nii", nih);
    check_case("nih", in, refs);
    /* Enhanced multi-frame: Philips magnitude + field map in one file, Siemens XA10 4-D. */
    snprintf(in, sizeof in, "%s/In/Philips", enh);
    snprintf(refs, sizeof refs, "'%s'/Ref/Philips*.nii", enh);
    check_case("enh_philips", in, refs);
    snprintf(in, sizeof in, "%s/In/Siemens", enh);
    snprintf(refs, sizeof refs, "'%s'/Ref/Siemens*.nii", enh);
    check_case("enh_siemens", in, refs);

    /* The comparison must be able to fail: series 5's output is not reference 4. */
    const char *neg = dt_scratch("negative");
    char out5[4096];
    snprintf(out5, sizeof out5, "%s/dicom_test_out/nih/5_Axial_EPI-FMRI__Sequential_I_to_S_.nii", AACLIP_BINARY_DIR);
    int st = dt_run("cp '%s' '%s/' && " DT_PY " '%s' '%s' '%s/Ref/DCM2NIIX_regression_test_4.nii' >/dev/null",
                    out5, neg, compare, neg, nih);
    CHECK(st == 1, "negative control: compare_nifti.py accepted a different series (status %d)", st);
    return tu_finish("test_dicom_ref");
}
