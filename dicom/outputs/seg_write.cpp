// seg_write.cpp - DICOM Segmentation (dcmseg) of a scored series: one FRACTIONAL/PROBABILITY
// instance holding p = mapping(score) as round(255 p), and one BINARY instance with a segment
// per threshold, in one new series. The segmentation type is an attribute of the instance
// (PS3.3 C.8.20.2), so the two kinds cannot share one object.
#include "dcm_out.h"

#include <dcmtk/dcmiod/cielabutil.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <cmath>
#include <memory>
#include <vector>

namespace {

using dcmout::ds;

// Segmented property (PS3.16 CID 7150 / 7151): a morphologically abnormal structure, type
// lesion; what aaclip finds is an anomaly, and this is the closest SNOMED CT pair.
const char kCategory[] = "49755003", kCategoryMeaning[] = "Morphologically abnormal structure";
const char kType[] = "52988006", kTypeMeaning[] = "Lesion";

void cielab(DcmSegment *seg, double r, double g, double b) {
    double L, A, B;
    IODCIELabUtil::rgb2DicomLab(L, A, B, r, g, b);
    seg->setRecommendedDisplayCIELabValue((Uint16)std::lrint(L), (Uint16)std::lrint(A), (Uint16)std::lrint(B));
}

aac_status make_segment(const aac_results *r, const aac_output_params *p, const OFString &label,
                        const OFString &description, double red, double green, double blue, DcmSegmentation *doc,
                        aac_error *err) {
    DcmSegment *seg = nullptr;
    OFCondition c = DcmSegment::create(seg, label, CodeSequenceMacro(kCategory, "SCT", kCategoryMeaning),
                                       CodeSequenceMacro(kType, "SCT", kTypeMeaning), DcmSegTypes::SAT_AUTOMATIC,
                                       "AA-CLIP");
    if (c.good()) c = seg->setSegmentDescription(description);
    if (c.good()) {
        AlgorithmIdentificationMacro &alg = seg->getSegmentationAlgorithmIdentification();
        alg.getAlgorithmFamilyCode().set("123110", "DCM", "Artificial Intelligence");
        alg.setAlgorithmName("AA-CLIP");
        alg.setAlgorithmVersion(aac_version());
        alg.setAlgorithmParameters(dcmout::algorithm_parameters(r, p));
        cielab(seg, red, green, blue);
    }
    Uint16 number = 0;
    if (c.good()) c = doc->addSegment(seg, number);
    if (c.bad()) {
        delete seg;
        return aac_fail(err, AAC_ERR_FORMAT, "segment \"%s\": %s", label.c_str(), c.text());
    }
    return AAC_OK;
}

aac_status write_one(const aac_results *r, const aac_output_params *p, bool fractional, const char *series_uid,
                     const char *path, aac_error *err) {
    const aac_volume *v = r->source;
    const int X = v->dim[0], Y = v->dim[1], Z = v->dim[2];
    DcmFileFormat src;
    aac_status st = dcmout::load_header(v->slice_paths[out_slot(r, 0)], src, err);
    if (st != AAC_OK) return st;

    ContentIdentificationMacro ident;
    ident.setInstanceNumber(fractional ? "1" : "2");
    ident.setContentLabel(fractional ? "AACLIP_PROB" : "AACLIP_MASK");
    ident.setContentDescription(fractional ? "AA-CLIP anomaly probability" : "AA-CLIP anomaly masks");
    ident.setContentCreatorName(""); // type 2: no person made it; the equipment names aaclip
    DcmSegmentation *raw = nullptr;
    OFCondition c = fractional ? DcmSegmentation::createFractionalSegmentation(
                                     raw, (Uint16)Y, (Uint16)X, DcmSegTypes::SFT_PROBABILITY, 255,
                                     dcmout::equipment(), ident)
                               : DcmSegmentation::createBinarySegmentation(raw, (Uint16)Y, (Uint16)X,
                                                                           dcmout::equipment(), ident);
    std::unique_ptr<DcmSegmentation> seg(raw);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot create the segmentation (%s)", path, c.text());

    // Patient, study and frame of reference of the source, checked (dcm_clean.cpp); our own
    // series and instance.
    DcmItem clean;
    dcmout::clean_source(*src.getDataset(), v, true, clean);
    c = seg->importFromSourceImage(clean);
    if (c.bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot take patient/study from %s (%s)", path, v->source, c.text());
    char uid[AAC_UID_LEN], dim_uid[AAC_UID_LEN];
    if ((st = out_uid(uid, err)) != AAC_OK || (st = out_uid(dim_uid, err)) != AAC_OK) return st;
    OFString date, time;
    dcmout::now(date, time);
    char number[16];
    snprintf(number, sizeof number, "%d", out_series_number(r, p, 0));
    seg->getSeries().setSeriesInstanceUID(series_uid);
    seg->getSegmentationSeriesModule().setSeriesNumber(number);
    seg->getSeries().setSeriesDescription("AA-CLIP anomaly segmentation");
    seg->getSeries().setSeriesDate(date);
    seg->getSeries().setSeriesTime(time);
    seg->getSOPCommon().setSOPInstanceUID(uid);
    seg->getGeneralImage().setContentDate(date);
    seg->getGeneralImage().setContentTime(time);

    IODMultiframeDimensionModule &dims = seg->getDimensions();
    c = dims.addDimensionIndex(DCM_ReferencedSegmentNumber, dim_uid, DCM_SegmentIdentificationSequence,
                               "ReferencedSegmentNumber");
    if (c.good())
        c = dims.addDimensionIndex(DCM_ImagePositionPatient, dim_uid, DCM_PlanePositionSequence,
                                   "ImagePositionPatient");
    FGPixelMeasures pm;
    dcmout::pixel_measures(r, pm);
    if (c.good()) c = seg->addForAllFrames(pm);
    if (c.good() && dcmout::constant_orientation(r)) {
        FGPlaneOrientationPatient po;
        dcmout::orientation(r, 0, po);
        c = seg->addForAllFrames(po);
    }
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: shared functional groups: %s", path, c.text());

    char mapping[512];
    out_mapping_text(r, mapping, sizeof mapping);
    double thr[AAC_MAX_THRESHOLDS];
    const int nt = aac_results_thresholds(r, thr);
    const int n_segments = fractional ? 1 : nt;
    for (int k = 0; k < n_segments && st == AAC_OK; k++) {
        if (fractional) {
            OFString d = OFString("AA-CLIP anomaly probability; ") + mapping +
                         "; stored as round(255 p) (MaximumFractionalValue 255)";
            st = make_segment(r, p, "Anomaly probability", d, 1.0, 0.85, 0.0, seg.get(), err);
        } else {
            OFString t = ds(thr[k]);
            OFString d = OFString("AA-CLIP anomaly mask: p >= ") + t + "; " + mapping;
            // Red for the default threshold, darker for stricter ones.
            const double shade = 1.0 - 0.6 * k / (nt > 1 ? nt - 1 : 1);
            st = make_segment(r, p, OFString("Anomaly p>=") + t, d, shade, 0.1, 0.1, seg.get(), err);
        }
    }
    if (st != AAC_OK) return st;

    double lo, hi;
    aac_results_range(r, &lo, &hi);
    dcmout::FrameGroups fg(r, CodeSequenceMacro("113076", "DCM", "Segmentation"));
    std::vector<Uint8> frame((size_t)X * Y);
    const size_t plane = (size_t)X * Y;
    for (int k = 0; k < n_segments; k++) {
        for (int z = 0; z < Z; z++) {
            const float *m = r->map + (size_t)z * plane;
            for (size_t i = 0; i < plane; i++) {
                const double q = out_prob(m[i], lo, hi);
                frame[i] = fractional ? (Uint8)std::lrint(255.0 * q) : (Uint8)(q >= thr[k]);
            }
            if ((st = fg.set(z, (Uint32)(k + 1), (Uint32)(z + 1), 2, err)) != AAC_OK) return st;
            c = seg->addFrame(frame.data(), (Uint16)(k + 1), fg.groups());
            if (c.bad())
                return aac_fail(err, AAC_ERR_FORMAT, "%s: frame for slice %d, segment %d: %s", path, z, k + 1,
                                c.text());
        }
    }
    if ((st = dcmout::referenced_series(r, seg->getCommonInstanceReference(), err)) != AAC_OK) return st;

    DcmFileFormat ff;
    DcmDataset *out = ff.getDataset();
    c = seg->writeDataset(*out);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot build the dataset (%s)", path, c.text());
    // Nested thresholds overlap by construction; one segment cannot.
    out->putAndInsertString(DCM_SegmentsOverlap, n_segments > 1 ? "YES" : "NO");
    dcmout::apply_clean(clean, *out);  // what DCMTK's modules do not carry (de-identification, ...)
    if (dcmout::valid_cs(v->body_part)) out->putAndInsertString(DCM_BodyPartExamined, v->body_part);
    return dcmout::save_atomic(ff, path, err);
}

}  // namespace

extern "C" aac_status aac_write_seg(const aac_results *r, const aac_output_params *p, const char *prob_path,
                                    const char *binary_path, aac_error *err) {
    aac_status st = out_check(r, 1, "segmentation", err);
    if (st != AAC_OK) return st;
    if (!prob_path && !binary_path) return aac_fail(err, AAC_ERR_ARG, "aac_write_seg: no output path");
    char series_uid[AAC_UID_LEN];
    if ((st = out_uid(series_uid, err)) != AAC_OK) return st;
    try {
        if (prob_path && (st = write_one(r, p, true, series_uid, prob_path, err)) != AAC_OK) return st;
        if (binary_path && (st = write_one(r, p, false, series_uid, binary_path, err)) != AAC_OK) return st;
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_NOMEM, "segmentation of %s: %s", r->source->source, e.what());
    }
    return AAC_OK;
}
