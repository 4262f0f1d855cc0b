// seg_read.cpp - a DICOM Segmentation read back through DCMTK (dcmseg): frames unpacked to one
// byte per pixel, each frame's plane, segment and derivation source. Used to check what
// aac_write_seg wrote and to read reference segmentations (3D Slicer, dcmqi, highdicom).
#include "dcm_out.h"

#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>
#include <dcmtk/dcmseg/segutils.h>
#include <dcmtk/dcmfg/fgseg.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

void copy_str(char *dst, size_t cap, const OFString &s) { copy_trim(dst, cap, s.c_str()); }

aac_status read_frame(DcmSegmentation &seg, size_t f, aac_seg *s, const char *path, aac_error *err) {
    FGInterface &fg = seg.getFunctionalGroups();
    aac_seg_frame *fr = &s->frames[f];
    OFBool per_frame = OFFalse;
    auto *pos = OFstatic_cast(FGPlanePosPatient *, fg.get((Uint32)f, DcmFGTypes::EFG_PLANEPOSPATIENT, per_frame));
    auto *ori = OFstatic_cast(FGPlaneOrientationPatient *, fg.get((Uint32)f, DcmFGTypes::EFG_PLANEORIENTPATIENT, per_frame));
    auto *segfg = OFstatic_cast(FGSegmentation *, fg.get((Uint32)f, DcmFGTypes::EFG_SEGMENTATION, per_frame));
    auto *der = OFstatic_cast(FGDerivationImage *, fg.get((Uint32)f, DcmFGTypes::EFG_DERIVATIONIMAGE, per_frame));
    if (!pos || !ori || !segfg)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: frame %zu lacks plane position, orientation or segment", path, f + 1);
    double *P = fr->position, *O = fr->orientation;
    if (pos->getImagePositionPatient(P[0], P[1], P[2]).bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: frame %zu: bad ImagePositionPatient", path, f + 1);
    if (ori->getImageOrientationPatient(O[0], O[1], O[2], O[3], O[4], O[5]).bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: frame %zu: bad ImageOrientationPatient", path, f + 1);
    Uint16 number = 0;
    segfg->getReferencedSegmentNumber(number);
    fr->segment = number;
    if (der && !der->getDerivationImageItems().empty() &&
        !der->getDerivationImageItems()[0]->getSourceImageItems().empty()) {
        ImageSOPInstanceReferenceMacro &ref =
            der->getDerivationImageItems()[0]->getSourceImageItems()[0]->getImageSOPInstanceReference();
        OFString v;
        if (ref.getReferencedSOPClassUID(v).good()) copy_str(fr->source_sop_class, sizeof fr->source_sop_class, v);
        if (ref.getReferencedSOPInstanceUID(v).good()) copy_str(fr->source_uid, sizeof fr->source_uid, v);
        OFVector<Uint16> frames;
        if (ref.getReferencedFrameNumber(frames).good() && !frames.empty()) fr->source_frame = frames[0];
    }
    const DcmIODTypes::Frame *px = seg.getFrame(f);
    if (!px) return aac_fail(err, AAC_ERR_FORMAT, "%s: frame %zu has no pixel data", path, f + 1);
    const size_t plane = (size_t)s->rows * s->cols;
    uint8_t *dst = s->pixels + f * plane;
    if (s->fractional) {
        if (px->length < plane) return aac_fail(err, AAC_ERR_FORMAT, "%s: frame %zu is short", path, f + 1);
        memcpy(dst, px->pixData, plane);
    } else {
        std::unique_ptr<DcmIODTypes::Frame> un(DcmSegUtils::unpackBinaryFrame(px, (Uint16)s->rows, (Uint16)s->cols));
        if (!un || un->length < plane) return aac_fail(err, AAC_ERR_FORMAT, "%s: frame %zu cannot be unpacked", path, f + 1);
        for (size_t i = 0; i < plane; i++) dst[i] = un->pixData[i] ? 1 : 0;
    }
    return AAC_OK;
}

}  // namespace

extern "C" void aac_seg_free(aac_seg *s) {
    if (!s) return;
    free(s->pixels);
    free(s->frames);
    free(s->segment_labels);
    free(s);
}

extern "C" aac_status aac_seg_read(const char *path, aac_seg **out, aac_error *err) {
    if (!path || !out) return aac_fail(err, AAC_ERR_ARG, "aac_seg_read: no path");
    *out = nullptr;
    dcm_init();
    DcmSegmentation *raw = nullptr;
    OFCondition c;
    try {  // DCMTK 3.6.7's parser throws on some corrupt values (see dcm_header.cpp)
        c = DcmSegmentation::loadFile(path, raw);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_FORMAT, "%s: not a readable segmentation (%s)", path, e.what());
    }
    std::unique_ptr<DcmSegmentation> seg(raw);
    if (c.bad() || !seg) return aac_fail(err, AAC_ERR_FORMAT, "%s: not a readable segmentation (%s)", path, c.text());
    aac_seg *s = (aac_seg *)calloc(1, sizeof *s);
    if (!s) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    aac_status st = AAC_OK;
    try {
        // Rows, Columns and MaximumFractionalValue are not exposed by the class: from the header.
        DcmFileFormat ff;
        Uint16 rows = 0, cols = 0, mx = 0;
        if (ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096).good()) {
            ff.getDataset()->findAndGetUint16(DCM_Rows, rows);
            ff.getDataset()->findAndGetUint16(DCM_Columns, cols);
            ff.getDataset()->findAndGetUint16(DCM_MaximumFractionalValue, mx);
        }
        s->rows = rows;
        s->cols = cols;
        s->n_frames = (int)seg->getNumberOfFrames();
        s->n_segments = (int)seg->getNumberOfSegments();
        s->fractional = seg->getSegmentationType() == DcmSegTypes::ST_FRACTIONAL;
        s->max_fractional = s->fractional ? mx : 0;
        OFString v;
        if (seg->getSOPCommon().getSOPInstanceUID(v).good()) copy_str(s->sop_uid, sizeof s->sop_uid, v);
        if (seg->getSeries().getSeriesInstanceUID(v).good()) copy_str(s->series_uid, sizeof s->series_uid, v);
        if (seg->getStudy().getStudyInstanceUID(v).good()) copy_str(s->study_uid, sizeof s->study_uid, v);
        if (seg->getFrameOfReference().getFrameOfReferenceUID(v).good())
            copy_str(s->frame_of_reference_uid, sizeof s->frame_of_reference_uid, v);
        if (seg->getSeries().getSeriesNumber(v).good()) s->series_number = atoi(v.c_str());
        OFBool per_frame = OFFalse;
        auto *pm = OFstatic_cast(FGPixelMeasures *,
                                 seg->getFunctionalGroups().get(0, DcmFGTypes::EFG_PIXELMEASURES, per_frame));
        for (int a = 0; pm && a < 2; a++) {
            Float64 x = 0;
            if (pm->getPixelSpacing(x, (unsigned long)a).good()) s->pixel_spacing[a] = x;
        }
        const size_t plane = (size_t)s->rows * s->cols;
        s->pixels = (uint8_t *)malloc(plane * (size_t)s->n_frames + 1);
        s->frames = (aac_seg_frame *)calloc((size_t)s->n_frames + 1, sizeof *s->frames);
        s->segment_labels = (char(*)[AAC_LO_LEN])calloc((size_t)s->n_segments + 1, sizeof *s->segment_labels);
        if (!s->pixels || !s->frames || !s->segment_labels) {
            st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory for %d frames", path, s->n_frames);
        }
        for (int k = 0; k < s->n_segments && st == AAC_OK; k++) {
            DcmSegment *g = seg->getSegment((size_t)k + 1);
            if (g && g->getSegmentLabel(v).good()) copy_str(s->segment_labels[k], AAC_LO_LEN, v);
        }
        for (int f = 0; f < s->n_frames && st == AAC_OK; f++) st = read_frame(*seg, (size_t)f, s, path, err);
    } catch (const std::exception &e) {
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: %s", path, e.what());
    }
    if (st != AAC_OK) {
        aac_seg_free(s);
        return st;
    }
    *out = s;
    return AAC_OK;
}
