// pmap_write.cpp - Parametric Map (dcmpmap) of the raw anomaly scores: float32 frames on the
// source planes, an identity Real World Value Mapping whose quantity is the private code
// "Anomaly score" (unitless), derivation references to the source instances.
#include "dcm_out.h"

#include <dcmtk/dcmiod/iodcontentitemmacro.h>
#include <dcmtk/dcmiod/modenhequipment.h>
#include <dcmtk/dcmiod/modfloatingpointimagepixel.h>
#include <dcmtk/dcmpmap/dpmparametricmapiod.h>

#include <cmath>
#include <cstring>
#include <strings.h>
#include <vector>

namespace {

struct Region {
    const char *body_part, *code, *meaning;
};

// BodyPartExamined -> anatomic region (SNOMED CT), for the required Frame Anatomy; the whole
// body where the source does not say or says something not listed.
const Region kRegions[] = {
    {"HEAD", "69536005", "Head"},     {"BRAIN", "12738006", "Brain"},      {"CHEST", "51185008", "Thorax"},
    {"ABDOMEN", "818981001", "Abdomen"}, {"PELVIS", "816092008", "Pelvis"}, {"LIVER", "10200004", "Liver"},
    {"NECK", "45048000", "Neck"},     {"SPINE", "421060004", "Spine"},
};

void anatomy(const char *body_part, FGFrameAnatomy &fa) {
    const char *code = "38266002", *meaning = "Entire body";
    for (const Region &r : kRegions)
        if (!strcasecmp(body_part, r.body_part)) code = r.code, meaning = r.meaning;
    fa.getAnatomy().getAnatomicRegion().set(code, "SCT", meaning);
    fa.setLaterality(FGFrameAnatomy::LATERALITY_UNPAIRED);
}

void real_world_value_mapping(const aac_results *r, FGRealWorldValueMapping &fg) {
    const aac_volume *v = r->source;
    const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (r->map[i] < lo) lo = r->map[i];
        if (r->map[i] > hi) hi = r->map[i];
    }
    if (!(lo <= hi)) lo = hi = 0;
    auto *item = new FGRealWorldValueMapping::RWVMItem();
    fg.getRealWorldValueMapping().push_back(item);
    // Float pixel data: the double-float first/last values mapped (the US/SS ones are for integers).
    item->setDoubleFloatRealWorldValueFirstValueMapped(lo);
    item->setDoubleFloatRealWorldValueLastValueMapped(hi);
    item->setRealWorldValueSlope(1.0);
    item->setRealWorldValueIntercept(0.0);
    item->setLUTLabel("AACLIP_SCORE");
    item->setLUTExplanation("AA-CLIP anomaly score (raw)");
    item->getMeasurementUnitsCode().set("1", "UCUM", "no units");
    auto *quantity = new ContentItemMacro();
    item->getEntireQuantityDefinitionSequence().push_back(quantity);
    quantity->setValueType(ContentItemMacro::VT_CODE);
    quantity->getEntireConceptNameCodeSequence().push_back(new CodeSequenceMacro("246205007", "SCT", "Quantity"));
    quantity->getEntireConceptCodeSequence().push_back(
        new CodeSequenceMacro(AAC_CODE_SCORE, AAC_CSD, AAC_CODE_SCORE_M));
}



aac_status write_pmap(const aac_results *r, const aac_output_params *p, const char *path, aac_error *err) {
    const aac_volume *v = r->source;
    const int X = v->dim[0], Y = v->dim[1], Z = v->dim[2];
    DcmFileFormat src;
    aac_status st = dcmout::load_header(v->slice_paths[out_slot(r, 0)], src, err);
    if (st != AAC_OK) return st;

    char series_uid[AAC_UID_LEN], uid[AAC_UID_LEN], dim_uid[AAC_UID_LEN], number[16];
    if ((st = out_uid(series_uid, err)) != AAC_OK || (st = out_uid(uid, err)) != AAC_OK ||
        (st = out_uid(dim_uid, err)) != AAC_OK)
        return st;
    snprintf(number, sizeof number, "%d", out_series_number(r, p, 1));
    ContentIdentificationMacro ident;
    ident.setInstanceNumber("1");
    ident.setContentLabel("AACLIP_SCORE");
    ident.setContentDescription("AA-CLIP anomaly score map");
    ident.setContentCreatorName("");
    const auto eq = dcmout::equipment();
    IODEnhGeneralEquipmentModule::EquipmentInfo enh(eq.m_Manufacturer, eq.m_ManufacturerModelName,
                                                    eq.m_DeviceSerialNumber, eq.m_SoftwareVersions);
    OFvariant<OFCondition, DPMParametricMapIOD> made = DPMParametricMapIOD::create<IODFloatingPointImagePixelModule>(
        dcmout::valid_cs(v->modality) ? v->modality : "OT", number, "1", (Uint16)Y, (Uint16)X, enh, ident, "VOLUME", "NONE",
        DPMTypes::CQ_RESEARCH);
    if (OFCondition *bad = OFget<OFCondition>(&made))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot create the parametric map (%s)", path, bad->text());
    DPMParametricMapIOD *pm = OFget<DPMParametricMapIOD>(&made);

    // Patient, study and frame of reference of the source, checked (dcm_clean.cpp).
    DcmItem clean;
    dcmout::clean_source(*src.getDataset(), v, true, clean);
    OFCondition c = pm->importHierarchy(clean, OFTrue, OFTrue, OFTrue, OFFalse);
    if (c.bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot take patient/study from %s (%s)", path, v->source, c.text());
    OFString date, time;
    dcmout::now(date, time);
    pm->getSeries().setSeriesInstanceUID(series_uid);
    pm->getSeries().setSeriesDescription("AA-CLIP anomaly score map");
    pm->getSeries().setSeriesDate(date);
    pm->getSeries().setSeriesTime(time);
    pm->getSOPCommon().setSOPInstanceUID(uid);
    pm->getGeneralImage().setContentDate(date);
    pm->getGeneralImage().setContentTime(time);
    pm->setRecognizableVisualFeatures(DPMTypes::RVF_NO);

    c = pm->getIODMultiframeDimensionModule().addDimensionIndex(DCM_ImagePositionPatient, dim_uid,
                                                               DCM_PlanePositionSequence, "ImagePositionPatient");
    FGPixelMeasures pmeas;
    dcmout::pixel_measures(r, pmeas);
    if (c.good()) c = pm->addForAllFrames(pmeas);
    if (c.good() && dcmout::constant_orientation(r)) {
        FGPlaneOrientationPatient po;
        dcmout::orientation(r, 0, po);
        c = pm->addForAllFrames(po);
    }
    FGFrameAnatomy fa;
    anatomy(v->body_part, fa);
    if (c.good()) c = pm->addForAllFrames(fa);
    FGPixelValueTransformation identity;
    identity.setUseAsIdentityPixelValueTransformation();
    if (c.good()) c = pm->addForAllFrames(identity);
    FGParametricMapFrameType ft;
    ft.setFrameType("DERIVED\\PRIMARY\\VOLUME\\NONE");
    if (c.good()) c = pm->addForAllFrames(ft);
    FGRealWorldValueMapping rwvm;
    real_world_value_mapping(r, rwvm);
    if (c.good()) c = pm->addForAllFrames(rwvm);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: shared functional groups: %s", path, c.text());

    DPMParametricMapIOD::FramesType frames = pm->getFrames();
    auto *f32 = OFget<DPMParametricMapIOD::Frames<Float32>>(&frames);
    if (!f32) return aac_fail(err, AAC_ERR_FORMAT, "%s: parametric map is not float32", path);
    // The derivation description carries what the SEG's algorithm identification does: model
    // bundle, mapping, thresholds (this IOD has no algorithm identification of its own).
    dcmout::FrameGroups fg(r, CodeSequenceMacro("110001", "DCM", "Image Processing"),
                           OFString("AA-CLIP ") + aac_version() + "; " + dcmout::algorithm_parameters(r, p));
    const size_t plane = (size_t)X * Y;
    std::vector<Float32> frame(plane);
    for (int z = 0; z < Z; z++) {
        memcpy(frame.data(), r->map + (size_t)z * plane, plane * sizeof(Float32));
        if ((st = fg.set(z, (Uint32)(z + 1), 0, 1, err)) != AAC_OK) return st;
        c = f32->addFrame(frame.data(), plane, fg.groups());
        if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: frame for slice %d: %s", path, z, c.text());
    }
    if ((st = dcmout::referenced_series(r, pm->getCommonInstanceReference(), err)) != AAC_OK) return st;

    DcmFileFormat ff;
    DcmDataset *out = ff.getDataset();
    c = pm->write(*out);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot build the dataset (%s)", path, c.text());
    dcmout::declare_private_scheme(*out);
    dcmout::apply_clean(clean, *out);  // what DCMTK's modules do not carry (de-identification, ...)
    if (dcmout::valid_cs(v->body_part)) out->putAndInsertString(DCM_BodyPartExamined, v->body_part);
    return dcmout::save_atomic(ff, path, err);
}

}  // namespace

extern "C" aac_status aac_write_pmap(const aac_results *r, const aac_output_params *p, const char *path,
                                     aac_error *err) {
    aac_status st = out_check(r, 1, "parametric map", err);
    if (st != AAC_OK) return st;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "aac_write_pmap: no output path");
    try {
        return write_pmap(r, p, path, err);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_NOMEM, "parametric map of %s: %s", r->source->source, e.what());
    }
}
