/* test_out_sparse.c - every output object stays valid whatever its source omits, empties or
 * garbles (item 8 of issue 14). Sources from gen_sparse_sources.py: a rich one (its values must
 * survive), de-identified ones (identity removed without a method, with an empty one, with
 * codes), a minimal one, one with every attribute empty, one with values that break their VR,
 * an animal patient, one without a study UID, a sparse Enhanced CT. For each: SEG (probability
 * and binary), Parametric Map and SR are written, dciodvfy reports no error, pydicom reads them,
 * every reference resolves, and the attributes say what the source said, or nothing: the
 * identity-removed statement is kept with a method, derived UIDs agree across the objects,
 * aaclip is the equipment. */
#include "out_test.h"

#include "outputs.h"

#define ROOT "1.2.826.0.1.3680043.8.498.77."

static const char *const kObjects[4] = {"seg_probability.dcm", "seg_binary.dcm", "pmap.dcm", "sr.dcm"};

/* Writes the four objects of src into a scratch folder named after the case; returns it. */
static const char *write_all(const char *name, const char *src, aac_volume **vol) {
    aac_volume *v = ot_load(src);
    const ot_blob blob = {0.5, 0.5, 0.5, 3, 1.0};
    float *map = ot_blob_map(v, 0, &blob, 1, 0.1);
    aac_results r = {.source = v, .map = map, .series_score = NAN};
    aac_output_params p = aac_output_default_params();
    p.model_hash = "sha256:sparse";
    char dirname[64], a[4096], b[4096], c[4096], d[4096];
    snprintf(dirname, sizeof dirname, "sparse_%.40s", name);
    const char *out = dt_scratch(dirname);
    snprintf(a, sizeof a, "%s/%s", out, kObjects[0]);
    snprintf(b, sizeof b, "%s/%s", out, kObjects[1]);
    snprintf(c, sizeof c, "%s/%s", out, kObjects[2]);
    snprintf(d, sizeof d, "%s/%s", out, kObjects[3]);
    aac_error e = {0};
    CHECK_OK(aac_write_seg(&r, &p, a, b, &e), &e);
    CHECK_OK(aac_write_pmap(&r, &p, c, &e), &e);
    CHECK_OK(aac_write_sr(&r, &p, b, d, &e), &e);
    for (int i = 0; i < 4; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", out, kObjects[i]);
        int errors = 0;
        if (ot_dciodvfy(path, &errors) >= 0) CHECK(errors == 0, "%s: %s: dciodvfy reports %d errors", name, path, errors);
        CHECK(dt_run(DT_PY " '%s' read '%s' >/dev/null", OT_CHECK_PY, path) == 0, "%s: pydicom cannot read %s", name, path);
    }
    CHECK(dt_run(DT_PY " '%s' result-dir '%s' '%s' >/dev/null", OT_CHECK_PY, out, src) == 0,
          "%s: references do not resolve", name);
    free(map);
    *vol = v;
    return out;
}

/* The attribute checks (out_check.py attrs) on the objects of out: `all` on every one,
 * `images` on the SEGs and the Parametric Map (which carry a frame of reference). */
static void attrs(const char *name, const char *out, const char *all, const char *images) {
    for (int i = 0; i < 4; i++) {
        CHECK(dt_run(DT_PY " '%s' attrs '%s/%s' %s", OT_CHECK_PY, out, kObjects[i], all) == 0, "%s: %s: %s", name,
              kObjects[i], all);
        if (i < 3 && images)
            CHECK(dt_run(DT_PY " '%s' attrs '%s/%s' %s", OT_CHECK_PY, out, kObjects[i], images) == 0, "%s: %s: %s",
                  name, kObjects[i], images);
    }
}

int main(void) {
    dt_need_python("pydicom, numpy");
    char dir[3900]; /* dt_scratch's buffers are reused */
    snprintf(dir, sizeof dir, "%.3800s", dt_scratch("sparse_sources"));
    CHECK(dt_run(DT_PY " '%s/gen_sparse_sources.py' '%s' 2>/dev/null", AACLIP_DICOM_TESTS_DIR, dir) == 0,
          "sources not generated");
    static const char *const equipment = "Manufacturer=aaclip ManufacturerModelName=AA-CLIP InstitutionName=! StationName=!";
    char src[4096], all[2048], img[1024], uid[AAC_UID_LEN];
    aac_volume *v = NULL;
    const char *out;

    /* rich: what the source states, unchanged */
    snprintf(src, sizeof src, "%s/rich", dir);
    out = write_all("rich", src, &v);
    snprintf(all, sizeof all,
             "%s PatientName=Sparse^Rich PatientID=SPARSE-rich PatientSex=F PatientBirthDate=19700101 "
             "StudyDate=20240102 StudyTime=101500 StudyID=S1 AccessionNumber=ACC1 ReferringPhysicianName=Ref^Doctor "
             "'StudyDescription=sparse source test' PatientAge=054Y PatientWeight=61.5 SpecificCharacterSet='ISO_IR 100' "
             "StudyInstanceUID=" ROOT "1.0 PatientIdentityRemoved=! ProcedureCodeSequence=+",
             equipment);
    snprintf(img, sizeof img, "FrameOfReferenceUID=" ROOT "1.3 BodyPartExamined=ABDOMEN");
    attrs("rich", out, all, img);
    aac_volume_free(v);

    /* de-identified: the statement is kept, with a method (the source's codes, or a stated gap) */
    static const char *const deid[] = {"deid_nomethod", "deid_empty"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s", dir, deid[i]);
        out = write_all(deid[i], src, &v);
        attrs(deid[i], out,
              "PatientIdentityRemoved=YES 'DeidentificationMethod=unspecified: the source states identity removed "
              "but no method' DeidentificationMethodCodeSequence=!",
              NULL);
        aac_volume_free(v);
    }
    snprintf(src, sizeof src, "%s/deid_codes", dir);
    out = write_all("deid_codes", src, &v);
    attrs("deid_codes", out, "PatientIdentityRemoved=YES DeidentificationMethod=! DeidentificationMethodCodeSequence=+",
          NULL);
    aac_volume_free(v);

    /* minimal and empty: Type 2 attributes present and empty, the frame of reference derived
     * from the series (the same in every object), no modality: OT */
    static const char *const sparse[] = {"minimal", "empty"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s", dir, sparse[i]);
        out = write_all(sparse[i], src, &v);
        out_uid_derived(v->series_uid, "frame-of-reference", uid);
        snprintf(all, sizeof all,
                 "%s PatientName= PatientID= PatientBirthDate= PatientSex= StudyDate= StudyTime= StudyID= "
                 "AccessionNumber= ReferringPhysicianName= SpecificCharacterSet=! PatientIdentityRemoved=! "
                 "BodyPartExamined=!",
                 equipment);
        snprintf(img, sizeof img, "FrameOfReferenceUID=%s PositionReferenceIndicator=", uid);
        attrs(sparse[i], out, all, img);
        snprintf(all, sizeof all, "%s/pmap.dcm", out);
        CHECK(dt_run(DT_PY " '%s' attrs '%s' Modality=OT", OT_CHECK_PY, all) == 0, "%s: PM modality", sparse[i]);
        aac_volume_free(v);
    }

    /* garbled: values that break their VR are not copied */
    snprintf(src, sizeof src, "%s/garbled", dir);
    out = write_all("garbled", src, &v);
    attrs("garbled", out,
          "PatientSex= StudyDate= StudyTime= PatientBirthDate= PatientName= AccessionNumber= PatientID=SPARSE-garbled "
          "StudyDescription=! PatientAge=! PatientWeight=! SpecificCharacterSet=! ProcedureCodeSequence=! "
          "BodyPartExamined=!",
          NULL);
    aac_volume_free(v);

    /* animal: the conditional attributes of an animal patient, present (empty) */
    snprintf(src, sizeof src, "%s/animal", dir);
    out = write_all("animal", src, &v);
    attrs("animal", out,
          "'PatientSpeciesDescription=Canis lupus familiaris' PatientBreedDescription= PatientBreedCodeSequence= "
          "BreedRegistrationSequence= ResponsiblePerson= ResponsibleOrganization= PatientSexNeutered=",
          NULL);
    aac_volume_free(v);

    /* no study UID: one derived from the series, the same in all four objects */
    snprintf(src, sizeof src, "%s/nostudy", dir);
    out = write_all("nostudy", src, &v);
    out_uid_derived(v->series_uid, "study", uid);
    snprintf(all, sizeof all, "StudyInstanceUID=%s", uid);
    attrs("nostudy", out, all, NULL);
    aac_volume_free(v);

    /* a sparse Enhanced CT: the same, with frame references */
    snprintf(src, sizeof src, "%s/enhanced", dir);
    out = write_all("enhanced", src, &v);
    CHECK(v->slice_frames[0] == 1 && v->slice_frames[2] == 3, "enhanced: frames %d..%d", v->slice_frames[0],
          v->slice_frames[2]);
    attrs("enhanced", out, "PatientName= StudyDate= Manufacturer=aaclip", NULL);
    aac_volume_free(v);

    /* A slice without a SOP Instance UID cannot be referenced: refused, saying so, nothing written. */
    snprintf(src, sizeof src, "%s/rich", dir);
    v = ot_load(src);
    v->slice_uids[1][0] = '\0';
    const ot_blob blob = {0.5, 0.5, 0.5, 3, 1.0};
    float *map = ot_blob_map(v, 0, &blob, 1, 0.1);
    aac_results r = {.source = v, .map = map, .series_score = NAN};
    aac_output_params p = aac_output_default_params();
    aac_error e = {0};
    out = dt_scratch("sparse_refused");
    snprintf(all, sizeof all, "%s/seg.dcm", out);
    CHECK(aac_write_seg(&r, &p, NULL, all, &e) == AAC_ERR_UNSUPPORTED && strstr(e.message, "no SOP Instance") &&
              strstr(e.message, "im1.dcm"),
          "a slice without SOP Instance UID: %s", e.message);
    CHECK(dt_run("test -z \"$(ls -A '%s')\"", out) == 0, "a refused write left files in %s", out);
    free(map);
    aac_volume_free(v);
    return tu_finish("test_out_sparse");
}
