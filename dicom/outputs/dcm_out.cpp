// dcm_out.cpp - DCMTK pieces shared by the SEG, Parametric Map and SR writers: source headers,
// equipment, per-frame functional groups on the source planes, references, atomic saving.
#include "dcm_out.h"

#include "dcm_load.h"

#include <cmath>
#include <cstring>
#include <set>
#include <string>

namespace dcmout {

namespace {
constexpr Uint32 kMaxReadLength = 4096;  // headers only: pixel data stays on disk
}

OFString ds(double v) {
    char buf[17];
    out_ds(v, buf);
    return OFString(buf);
}

void now(OFString &date, OFString &time) {
    DcmDate::getCurrentDate(date);
    DcmTime::getCurrentTime(time, OFTrue /* seconds */, OFFalse /* no fraction */);
}

aac_status load_header(const char *path, DcmFileFormat &ff, aac_error *err) {
    OFCondition c = dcm_load_file(ff, path, kMaxReadLength, nullptr);  // plain or *.dcm.gz
    if (c.bad()) return aac_fail(err, AAC_ERR_IO, "%s: cannot read the source header (%s)", path, c.text());
    return AAC_OK;
}

// Referenced Frame Number is IS, but DCMTK 3.6.7's setReferencedFrameNumber() stores its values
// with putUint16(), which an IS element refuses ("Illegal call"), and addReferencedFrameNumber()
// takes 16 bits where IS holds any frame number. The macro reads the whole reference from an
// item instead, with the frame number as text.
OFCondition set_image_reference(ImageSOPInstanceReferenceMacro &ref, const char *sop_class, const char *sop_uid,
                                int frame) {
    DcmItem item;
    OFCondition c = item.putAndInsertString(DCM_ReferencedSOPClassUID, sop_class);
    if (c.good()) c = item.putAndInsertString(DCM_ReferencedSOPInstanceUID, sop_uid);
    if (c.good() && frame > 0) {
        char text[16];
        snprintf(text, sizeof text, "%d", frame);
        c = item.putAndInsertString(DCM_ReferencedFrameNumber, text);
    }
    if (c.good()) c = ref.read(item);
    return c;
}

IODGeneralEquipmentModule::EquipmentInfo equipment() {
    return IODGeneralEquipmentModule::EquipmentInfo("aaclip", "AA-CLIP", "none", aac_version());
}

OFString algorithm_parameters(const aac_results *r, const aac_output_params *p) {
    char map[512];
    out_mapping_text(r, map, sizeof map);
    double thr[AAC_MAX_THRESHOLDS];
    const int nt = aac_results_thresholds(r, thr);
    std::string s = "model bundle=";
    s += p && p->model_hash ? p->model_hash : "unknown";
    if (p && p->model_name) s += std::string("; model name=") + p->model_name;
    s += "; " + std::string(map) + "; thresholds on p=";
    for (int i = 0; i < nt; i++) s += (i ? "\\" : "") + std::string(ds(thr[i]).c_str());
    char vol[64];
    snprintf(vol, sizeof vol, "; scored volume=%d", r->t);
    s += vol;
    return OFString(s.c_str());
}

bool constant_orientation(const aac_results *r) {
    const aac_volume *v = r->source;
    const double *o0 = v->slice_orientations[out_slot(r, 0)];
    for (int z = 1; z < v->dim[2]; z++)
        if (memcmp(o0, v->slice_orientations[out_slot(r, z)], 6 * sizeof(double)) != 0) return false;
    return true;
}

void pixel_measures(const aac_results *r, FGPixelMeasures &pm) {
    const aac_volume *v = r->source;
    // PixelSpacing is (row spacing, column spacing) = (y, x) spacing.
    pm.setPixelSpacing(ds(v->spacing[1]) + "\\" + ds(v->spacing[0]));
    pm.setSliceThickness(ds(v->slice_thickness > 0 ? v->slice_thickness : v->spacing[2]));
}

void orientation(const aac_results *r, int z, FGPlaneOrientationPatient &po) {
    const double *o = r->source->slice_orientations[out_slot(r, z)];
    po.setImageOrientationPatient(ds(o[0]), ds(o[1]), ds(o[2]), ds(o[3]), ds(o[4]), ds(o[5]));
}

FrameGroups::FrameGroups(const aac_results *r, const CodeSequenceMacro &derivation_code, const OFString &description)
    : r_(r), code_(derivation_code), description_(description.substr(0, 1024)) /* ST */, per_frame_orientation_(!constant_orientation(r)) {
    list_.push_back(&pos_);
    list_.push_back(&content_);
    list_.push_back(&deriv_);
    if (per_frame_orientation_) list_.push_back(&orient_);
}

aac_status FrameGroups::set(int z, Uint32 dim0, Uint32 dim1, int n_dims, aac_error *err) {
    const aac_volume *v = r_->source;
    const size_t s = out_slot(r_, z);
    const double *P = v->slice_positions[s];
    OFCondition c = pos_.setImagePositionPatient(ds(P[0]), ds(P[1]), ds(P[2]));
    if (per_frame_orientation_) orientation(r_, z, orient_);
    if (c.good()) c = content_.setDimensionIndexValues(dim0, 0);
    if (c.good() && n_dims > 1) c = content_.setDimensionIndexValues(dim1, 1);
    deriv_.clearData();
    DerivationImageItem *item = nullptr;
    if (c.good()) c = deriv_.addDerivationImageItem(code_, description_, item);
    if (c.good()) {
        SourceImageItem *src = new SourceImageItem();
        src->getPurposeOfReferenceCode().set("121322", "DCM", "Source image for image processing operation");
        ImageSOPInstanceReferenceMacro &ref = src->getImageSOPInstanceReference();
        c = set_image_reference(ref, v->slice_sop_classes[s], v->slice_uids[s], v->slice_frames[s]);
        item->getSourceImageItems().push_back(src);
    }
    if (c.bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: slice %d: cannot describe its frame (%s)", v->slice_paths[s], z,
                        c.text());
    return AAC_OK;
}

aac_status referenced_series(const aac_results *r, IODCommonInstanceReferenceModule &m, aac_error *err) {
    const aac_volume *v = r->source;
    auto *series = new IODSeriesAndInstanceReferenceMacro::ReferencedSeriesItem();
    m.getReferencedSeriesItems().push_back(series);  // owned by the module from here on
    OFCondition c = series->setSeriesInstanceUID(v->series_uid);
    std::set<std::string> seen;
    for (int z = 0; z < v->dim[2] && c.good(); z++) {
        const size_t s = out_slot(r, z);
        if (!seen.insert(v->slice_uids[s]).second) continue;  // multi-frame: one instance, many slices
        auto *inst = new SOPInstanceReferenceMacro();
        series->getReferencedInstanceItems().push_back(inst);
        c = inst->setReferencedSOPClassUID(v->slice_sop_classes[s]);
        if (c.good()) c = inst->setReferencedSOPInstanceUID(v->slice_uids[s]);
    }
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot reference the source series (%s)", v->source, c.text());
    return AAC_OK;
}

void declare_private_scheme(DcmItem &ds) {
    DcmItem *it = nullptr;
    if (ds.findOrCreateSequenceItem(DCM_CodingSchemeIdentificationSequence, it, -2).good() && it) {
        it->putAndInsertString(DCM_CodingSchemeDesignator, AAC_CSD);
        it->putAndInsertString(DCM_CodingSchemeName, AAC_CSD_NAME);
        it->putAndInsertString(DCM_CodingSchemeResponsibleOrganization, "aaclip project (see docs/outputs.md)");
    }
}

aac_status save_atomic(DcmFileFormat &ff, const char *path, aac_error *err) {
    char tmp[4096];
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st != AAC_OK) return st;
    OFCondition c = ff.saveFile(tmp, EXS_LittleEndianExplicit);
    if (c.bad()) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write (%s)", path, c.text());
    }
    return fs_commit(tmp, path, err);
}

}  // namespace dcmout
