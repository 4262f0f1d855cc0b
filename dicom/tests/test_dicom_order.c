/* test_dicom_order.c - `convert` writes dcm2niix's voxel order and affine: every case of
 * gen_order.py (axial, sagittal, coronal and oblique 2-D stacks in both instance orders, rows
 * running right to left, 3-D acquisitions in four orientations, 3-D EPI, 3-D 4-D, uneven 3-D,
 * CT, fMRI, Siemens mosaics with the CSA normal along and against row x column, a Siemens stack
 * with a reversed ProtocolSliceNumber, a long stack whose positions are rounded) is converted
 * by `aaclip convert` and by Debian's dcm2niix, and the files must be equal strictly (same
 * array, same sform and qform: compare_nifti.py). The comparison must be able to fail: the
 * volume written in its own order is not dcm2niix's file. */
#include "dicom_test.h"

#include "aaclip_dicom.h"

static const char *const cases[] = {"ax_asc", "ax_desc", "sag", "cor", "obl", "tilted_rows", "mr3d_sag",
                                    "mr3d_cor", "mr3d_ax", "mr3d_obl", "mr3d_epi", "mr3d_4d", "mr3d_uneven", "ct",
                                    "fmri", "mosaic_fwd", "mosaic_rev", "siemens_psn", "rounded"};

int main(void) {
    dt_need_python("pydicom, numpy, nibabel");
    if (dt_run("command -v dcm2niix >/dev/null 2>&1") != 0) {
        printf("SKIP: dcm2niix is not installed (tools/install-deps.sh installs Debian's dcm2niix)\n");
        return 77;
    }
    static char root[2048]; /* dt_scratch's buffers are reused */
    snprintf(root, sizeof root, "%s", dt_scratch("order"));
    CHECK(dt_run(DT_PY " '%s/gen_order.py' '%s/in'", AACLIP_DICOM_TESTS_DIR, root) == 0, "fixtures not generated");
    const size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        const char *c = cases[i];
        int st = dt_run("mkdir -p '%s/ours/%s' '%s/d2n/%s' && '%s' convert '%s/in/%s' -o '%s/ours/%s/' > '%s/ours/%s.log' 2>&1",
                        root, c, root, c, AACLIP_INGEST_EXE, root, c, root, c, root, c);
        CHECK(st == 0, "%s: convert exited %d", c, st);
        /* dcm2niix exits 1 for mr3d_uneven (it cannot make its extra "_Eq" copy of 16-bit data)
         * after writing the main file; the comparison needs the file, not the status */
        st = dt_run("dcm2niix -b n -f %%s_%%p -o '%s/d2n/%s' '%s/in/%s' > '%s/d2n/%s.log' 2>&1", root, c, root, c, root,
                    c);
        if (st) printf("%s: dcm2niix exited %d (see %s/d2n/%s.log)\n", c, st, root, c);
        printf("%s: ", c);
        st = dt_run(DT_PY " '%s/compare_nifti.py' '%s/ours/%s' '%s/d2n/%s/'*.nii", AACLIP_DICOM_TESTS_DIR, root, c, root,
                    c);
        CHECK(st == 0, "%s: convert differs from dcm2niix", c);
    }

    /* Negative control: the 3-D sagittal volume in its own layout (x along rows, z along the
     * normal) holds the same world but is not dcm2niix's array. */
    char path[4096];
    snprintf(path, sizeof path, "%s/in/mr3d_sag", root);
    const char *paths[] = {path};
    aac_scan *s = NULL;
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    if (s && aac_scan_series_count(s) == 1) {
        const int *ax = aac_scan_series(s, 0)->nifti_axes;
        CHECK(!(ax[0] == 1 && ax[1] == 2 && ax[2] == 3), "mr3d_sag: dcm2niix's order should not be the layout");
        CHECK_OK(aac_scan_load(s, 0, &v, &e), &e);
        snprintf(path, sizeof path, "%s/negative", root);
        dt_run("mkdir -p '%s'", path);
        snprintf(path, sizeof path, "%s/negative/layout.nii", root);
        CHECK_OK(aac_volume_write_nifti(v, path, &e), &e);
        const int st = dt_run(DT_PY " '%s/compare_nifti.py' '%s/negative' '%s/d2n/mr3d_sag/'*.nii >/dev/null",
                              AACLIP_DICOM_TESTS_DIR, root, root);
        CHECK(st == 1, "negative control: the volume in its own order was accepted (status %d)", st);
    }
    aac_volume_free(v);
    aac_scan_free(s);
    return tu_finish("test_dicom_order");
}
