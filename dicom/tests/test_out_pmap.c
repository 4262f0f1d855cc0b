/* test_out_pmap.c - Parametric Map of the raw scores for the three DICOM sources of out_test.h:
 * dciodvfy reports no errors, pydicom reads the float frames back equal to the map and finds
 * the identity Real World Value Mapping, and every frame lies on its source plane. */
#include "out_test.h"

static void run_case(const ot_case *c) {
    aac_results r;
    ot_results(c, &r);
    const aac_volume *v = r.source;
    aac_output_params p = aac_output_default_params();
    p.model_hash = "sha256:0123456789abcdef";
    char name[64], path[4096], raw[4096];
    snprintf(name, sizeof name, "pmap_%.50s", c->name);
    const char *out = dt_scratch(name);
    snprintf(path, sizeof path, "%s/pmap.dcm", out);
    aac_error e = {0};
    CHECK_OK(aac_write_pmap(&r, &p, path, &e), &e);
    int errors = 0;
    if (ot_dciodvfy(path, &errors) >= 0) CHECK(errors == 0, "%s: dciodvfy reports %d errors", path, errors);
    /* The map as raw float32 for the independent comparison. */
    snprintf(raw, sizeof raw, "%s/map_%d_%d_%d.f32", out, v->dim[0], v->dim[1], v->dim[2]);
    FILE *f = fopen(raw, "wb");
    const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    CHECK(f && fwrite(r.map, sizeof(float), n, f) == n, "cannot write %s", raw);
    if (f) fclose(f);
    CHECK(dt_run(DT_PY " '%s' pmap '%s' '%s'", OT_CHECK_PY, path, raw) == 0, "%s: frames differ from the map", path);
    CHECK(dt_run(DT_PY " '%s' seg-sources '%s' '%s'", OT_CHECK_PY, path, c->src) == 0,
          "%s: frames off their source planes", path);
    ot_results_free(&r);
}

int main(void) {
    dt_need_python("pydicom, numpy");
    ot_case cases[OT_MAX_CASES];
    const int n = ot_cases(cases);
    for (int i = 0; i < n; i++) run_case(&cases[i]);
    return tu_finish("test_out_pmap");
}
