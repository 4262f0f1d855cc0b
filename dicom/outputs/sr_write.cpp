// sr_write.cpp - TID 1500 Measurement Report (dcmsr, DCMTK's CMR classes) of a scored series:
// aaclip as device observer, the image library of the scored source instances, the series
// score, the maximum score of every slice (each referencing its source image), and one
// volumetric ROI group (TID 1411) per connected component of each binary SEG segment, with
// its volume, maximum and mean score and centroid, referencing the segment.
#include "dcm_out.h"

#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace {

using dcmout::ds;
using Report = TID1500_MeasurementReport;
using RoiValue = CMR_TID1411_in_TID1500::MeasurementValue;
using IndValue = CMR_TID1501_in_TID1500::MeasurementValue;

// Codes written as explicit values rather than through the CID enums, whose code tables DCMTK
// fills lazily in process-wide statics.
const DSRCodedEntryValue kNoUnits("1", "UCUM", "no units");
const DSRCodedEntryValue kMm3("mm3", "UCUM", "cubic millimeter");
const DSRCodedEntryValue kMm("mm", "UCUM", "millimeter");
const DSRCodedEntryValue kMaximum("56851009", "SCT", "Maximum");
const DSRCodedEntryValue kMean("373098007", "SCT", "Mean");
const DSRCodedEntryValue kVolume("118565006", "SCT", "Volume");
const DSRCodedEntryValue kScore(AAC_CODE_SCORE, AAC_CSD, AAC_CODE_SCORE_M);
const DSRCodedEntryValue kSeriesScore(AAC_CODE_SERIES, AAC_CSD, AAC_CODE_SERIES_M);
const DSRCodedEntryValue kImageScore(AAC_CODE_IMAGE, AAC_CSD, AAC_CODE_IMAGE_M);
const DSRCodedEntryValue kRegion(AAC_CODE_REGION, AAC_CSD, AAC_CODE_REGION_M);
const DSRCodedEntryValue kCentroid[3] = {DSRCodedEntryValue(AAC_CODE_CX, AAC_CSD, AAC_CODE_CX_M),
                                         DSRCodedEntryValue(AAC_CODE_CY, AAC_CSD, AAC_CODE_CY_M),
                                         DSRCodedEntryValue(AAC_CODE_CZ, AAC_CSD, AAC_CODE_CZ_M)};

DSRCodedEntryValue procedure(const char *modality) {
    if (!strcmp(modality, "CT")) return DSRCodedEntryValue("25045-6", "LN", "CT unspecified body region");
    if (!strcmp(modality, "MR")) return DSRCodedEntryValue("25056-3", "LN", "MRI unspecified body region");
    if (!strcmp(modality, "PT")) return DSRCodedEntryValue("44136-0", "LN", "PET unspecified body region");
    if (!strcmp(modality, "NM")) return DSRCodedEntryValue("49118-3", "LN", "NM unspecified body region");
    return DSRCodedEntryValue("363679005", "SCT", "Imaging procedure");
}

struct Fail {
    aac_status st;
};

// Throws out of the report assembly with the file and the failing step named.
void need(const OFCondition &c, const char *path, const char *what, aac_error *err) {
    if (c.bad()) throw Fail{aac_fail(err, AAC_ERR_FORMAT, "%s: %s: %s", path, what, c.text())};
}

DSRImageReferenceValue slice_image(const aac_results *r, int z) {
    const aac_volume *v = r->source;
    const size_t s = out_slot(r, z);
    DSRImageReferenceValue img(v->slice_sop_classes[s], v->slice_uids[s]);
    if (v->slice_frames[s] > 0) img.getFrameList().addItem((Sint32)v->slice_frames[s]);
    return img;
}

void build(const aac_results *r, const aac_output_params *p, DcmItem &seg, Report &report, const char *path,
           aac_error *err) {
    const aac_volume *v = r->source;
    const int Z = v->dim[2];
    need(report.setLanguage(DSRCodedEntryValue("eng", "RFC5646", "English")), path, "language", err);
    const std::string model = std::string("aaclip ") + aac_version() + " (AA-CLIP)";
    need(report.getObservationContext().addDeviceObserver(AAC_DEVICE_UID, "aaclip", "aaclip", model.c_str()), path,
         "device observer", err);
    need(report.addProcedureReported(procedure(v->modality)), path, "procedure reported", err);

    // Image library: each scored source instance once (a multi-frame instance holds many slices).
    TID1600_ImageLibrary &lib = report.getImageLibrary();
    need(lib.createNewImageLibrary(), path, "image library", err);
    need(lib.addImageGroup(), path, "image library group", err);
    std::set<std::string> seen;
    for (int z = 0; z < Z; z++) {
        const size_t s = out_slot(r, z);
        if (!seen.insert(v->slice_uids[s]).second) continue;
        DcmFileFormat ff;
        aac_status st = dcmout::load_header(v->slice_paths[s], ff, err);
        if (st != AAC_OK) throw Fail{st};
        dcmout::drop_invalid(*ff.getDataset());  // descriptors only from values valid for their VR
        need(lib.addImageEntry(*ff.getDataset(), TID1600_ImageLibrary::withAllDescriptors), v->slice_paths[s],
             "image library entry", err);
    }
    // Descriptors all entries share (modality, dates, spacing, orientation) once, on the group.
    need(lib.moveCommonImageDescriptorsToImageGroups(), path, "image library descriptors", err);

    // Series score.
    double series = r->series_score;
    std::vector<float> smax((size_t)Z);
    out_slice_max(r, smax.data());
    if (std::isnan(series)) {
        series = -INFINITY;
        for (float m : smax) series = std::fmax(series, m);
    }
    char uid[AAC_UID_LEN];
    aac_status st;
    need(report.addIndividualMeasurements(), path, "series group", err);
    {
        CMR_TID1501_in_TID1500 &g = report.getIndividualMeasurements();
        if ((st = out_uid(uid, err)) != AAC_OK) throw Fail{st};
        need(g.setTrackingIdentifier("AA-CLIP series anomaly score"), path, "tracking id", err);
        need(g.setTrackingUniqueIdentifier(uid), path, "tracking uid", err);
        need(g.addMeasurement(kSeriesScore, IndValue(ds(series), kNoUnits)), path, "series score", err);
    }
    // Per-slice maximum (and the image-level score where the caller has one), on the source image.
    need(report.addIndividualMeasurements(), path, "slice group", err);
    {
        CMR_TID1501_in_TID1500 &g = report.getIndividualMeasurements();
        if ((st = out_uid(uid, err)) != AAC_OK) throw Fail{st};
        need(g.setTrackingIdentifier("AA-CLIP per-slice scores"), path, "tracking id", err);
        need(g.setTrackingUniqueIdentifier(uid), path, "tracking uid", err);
        for (int z = 0; z < Z; z++) {
            need(g.addMeasurement(kScore, IndValue(ds(smax[(size_t)z]), kNoUnits)), path, "slice maximum", err);
            need(g.getMeasurement().setDerivation(kMaximum), path, "derivation", err);
            need(g.getMeasurement().addImage(CODE_DCM_SourceOfMeasurement, slice_image(r, z)), path, "slice image", err);
            if (r->slice_scores) {
                need(g.addMeasurement(kImageScore, IndValue(ds(r->slice_scores[z]), kNoUnits)), path, "slice score", err);
                need(g.getMeasurement().addImage(CODE_DCM_SourceOfMeasurement, slice_image(r, z)), path, "slice image",
                     err);
            }
        }
    }

    // One volumetric group per region of each binary segment.
    double thr[AAC_MAX_THRESHOLDS];
    const int nt = aac_results_thresholds(r, thr);
    const int conn = p && p->connectivity ? p->connectivity : 26;
    const std::string bundle = std::string("model bundle=") + (p && p->model_hash ? p->model_hash : "unknown");
    for (int level = 1; level <= nt; level++) {
        aac_region *regions = nullptr;
        int n = 0;
        if ((st = aac_regions(r, level, conn, &regions, &n, err)) != AAC_OK) throw Fail{st};
        std::unique_ptr<aac_region, decltype(&free)> hold(regions, &free);
        for (int i = 0; i < n; i++) {
            const aac_region &g = regions[i];
            need(report.addVolumetricROIMeasurements(), path, "region group", err);
            CMR_TID1411_in_TID1500 &m = report.getVolumetricROIMeasurements();
            char id[96];
            snprintf(id, sizeof id, "AA-CLIP region %d of p>=%s", i + 1, ds(thr[level - 1]).c_str());
            if ((st = out_uid(uid, err)) != AAC_OK) throw Fail{st};
            need(m.setTrackingIdentifier(id), path, "tracking id", err);
            need(m.setTrackingUniqueIdentifier(uid), path, "tracking uid", err);
            need(m.setFinding(kRegion), path, "finding", err);
            need(m.setReferencedSegment(seg, (Uint16)level, OFFalse), path, "referenced segment", err);
            need(m.setSourceSeriesForSegmentation(v->series_uid), path, "source series", err);
            auto add = [&](const DSRCodedEntryValue &what, double value, const DSRCodedEntryValue &units,
                           const DSRCodedEntryValue *derivation) {
                need(m.addMeasurement(what, RoiValue(ds(value), units)), path, "region measurement", err);
                if (derivation) need(m.getMeasurement().setDerivation(*derivation), path, "derivation", err);
                need(m.getMeasurement().setAlgorithmIdentification("AA-CLIP", aac_version()), path, "algorithm", err);
                need(m.getMeasurement().getAlgorithmIdentification().addParameter(bundle.c_str()), path,
                     "algorithm parameter", err);
            };
            add(kVolume, g.volume_mm3, kMm3, nullptr);
            add(kScore, g.max_score, kNoUnits, &kMaximum);
            add(kScore, g.mean_score, kNoUnits, &kMean);
            for (int a = 0; a < 3; a++) add(kCentroid[a], g.centroid[a], kMm, nullptr);
        }
    }
    if (!report.isValid()) throw Fail{aac_fail(err, AAC_ERR_FORMAT, "%s: the measurement report is incomplete", path)};
}

// The SEG the regions refer to: a binary segmentation with one segment per threshold.
aac_status check_seg(const aac_results *r, DcmItem &seg, const char *seg_path, aac_error *err) {
    OFString cls, type;
    seg.findAndGetOFString(DCM_SOPClassUID, cls);
    seg.findAndGetOFString(DCM_SegmentationType, type);
    DcmSequenceOfItems *segments = nullptr;
    seg.findAndGetSequence(DCM_SegmentSequence, segments);
    double thr[AAC_MAX_THRESHOLDS];
    const int nt = aac_results_thresholds(r, thr);
    if (cls != UID_SegmentationStorage || type != "BINARY" || !segments || (int)segments->card() != nt)
        return aac_fail(err, AAC_ERR_ARG, "%s: not the binary segmentation of these results (%s %s, %lu segments for %d thresholds)",
                        seg_path, cls.c_str(), type.c_str(), segments ? segments->card() : 0UL, nt);
    return AAC_OK;
}

aac_status write_sr(const aac_results *r, const aac_output_params *p, const char *seg_path, const char *path,
                    aac_error *err) {
    const aac_volume *v = r->source;
    DcmFileFormat segff, src;
    aac_status st = dcmout::load_header(seg_path, segff, err);
    if (st == AAC_OK) st = check_seg(r, *segff.getDataset(), seg_path, err);
    if (st == AAC_OK) st = dcmout::load_header(v->slice_paths[out_slot(r, 0)], src, err);
    if (st != AAC_OK) return st;

    Report report(DSRCodedEntryValue("126000", "DCM", "Imaging Measurement Report"));
    try {
        build(r, p, *segff.getDataset(), report, path, err);
    } catch (const Fail &f) {
        return f.st;
    }
    DSRDocument doc(DSRTypes::DT_ComprehensiveSR);
    OFCondition c = doc.setTreeFromRootTemplate(report, OFTrue /* expand included templates */);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot assemble the document (%s)", path, c.text());
    // Patient and study as the source states them, checked (dcm_clean.cpp); the study UID the
    // SEG got from the same source, derived the same way when the source has none.
    DcmItem clean;
    dcmout::clean_source(*src.getDataset(), v, false, clean);
    OFString study;
    clean.findAndGetOFString(DCM_StudyInstanceUID, study);
    // Evidence: every instance the report references (source images, the SEG).
    std::set<std::string> seen;
    for (int z = 0; z < v->dim[2] && c.good(); z++) {
        const size_t s = out_slot(r, z);
        if (seen.insert(v->slice_uids[s]).second)
            c = doc.getCurrentRequestedProcedureEvidence().addItem(study, v->series_uid, v->slice_sop_classes[s],
                                                                   v->slice_uids[s]);
    }
    if (c.good()) c = doc.getCurrentRequestedProcedureEvidence().addItem(*segff.getDataset());
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: evidence: %s", path, c.text());

    char series_uid[AAC_UID_LEN], uid[AAC_UID_LEN], number[16];
    if ((st = out_uid(series_uid, err)) != AAC_OK || (st = out_uid(uid, err)) != AAC_OK) return st;
    snprintf(number, sizeof number, "%d", out_series_number(r, p, 2));
    doc.setSeriesDescription("AA-CLIP anomaly measurements");
    doc.setSeriesNumber(number);
    doc.setInstanceNumber("1");
    doc.setManufacturer("aaclip");
    doc.setManufacturerModelName("AA-CLIP");
    doc.setSoftwareVersions(aac_version());
    doc.setDeviceSerialNumber("none");
    doc.completeDocument();  // nothing is left to add: the report is what the algorithm found

    DcmFileFormat ff;
    DcmDataset *out = ff.getDataset();
    c = doc.write(*out);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot build the dataset (%s)", path, c.text());
    // Patient and study of the source (checked); our own series and instance UIDs.
    dcmout::apply_clean(clean, *out);
    out->putAndInsertString(DCM_SeriesInstanceUID, series_uid);
    out->putAndInsertString(DCM_SOPInstanceUID, uid);
    dcmout::declare_private_scheme(*out);
    return dcmout::save_atomic(ff, path, err);
}

}  // namespace

extern "C" aac_status aac_write_sr(const aac_results *r, const aac_output_params *p, const char *binary_seg_path,
                                   const char *path, aac_error *err) {
    aac_status st = out_check(r, 1, "measurement report", err);
    if (st != AAC_OK) return st;
    if (!path || !binary_seg_path)
        return aac_fail(err, AAC_ERR_ARG, "aac_write_sr: the output path and the binary SEG are required");
    try {
        return write_sr(r, p, binary_seg_path, path, err);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_NOMEM, "measurement report of %s: %s", r->source->source, e.what());
    }
}
