// ct_write_enhanced.cpp - a volume as one Enhanced CT Image Storage object (PS3.3 A.38): every
// slice a frame, the geometry in functional groups (shared: pixel measures, orientation, HU
// rescale, anatomy, frame type, window, irradiation event; per frame: position and frame content
// with a stack dimension), deterministic like the series writer (ct_write.cpp), so the same
// volume and parameters give a byte-identical file. It exists to test what aaclip does with a
// modern multi-frame source without shipping scanner data.
#include "ct_write.h"

#include <cstring>
#include <string>
#include <vector>

#include "aaclip_synth.h"

namespace {

using namespace ctw;

const char kEnhancedCT[] = "1.2.840.10008.5.1.4.1.1.2.1";  // Enhanced CT Image Storage

// Body part -> anatomic region (SNOMED CT) for the Frame Anatomy the IOD requires.
void anatomy(const char *body_part, DcmItem &fa, Tags &t) {
    const char *code = "38266002", *meaning = "Entire body";
    if (body_part && !strcmp(body_part, "ABDOMEN")) code = "818981001", meaning = "Abdomen";
    else if (body_part && !strcmp(body_part, "CHEST")) code = "51185008", meaning = "Thorax";
    else if (body_part && !strcmp(body_part, "HEAD")) code = "69536005", meaning = "Head";
    Tags a{fa};
    a.put(DCM_FrameLaterality, "U", "FrameLaterality");
    if (DcmItem *r = a.item(DCM_AnatomicRegionSequence, "AnatomicRegionSequence")) {
        Tags c{*r};
        c.put(DCM_CodeValue, code, "CodeValue");
        c.put(DCM_CodingSchemeDesignator, "SCT", "CodingSchemeDesignator");
        c.put(DCM_CodeMeaning, meaning, "CodeMeaning");
        if (c.c.bad()) a.c = c.c, a.bad = c.bad;
    }
    if (a.c.bad() && t.c.good()) t.c = a.c, t.bad = a.bad;
}

struct Uids {
    char study[AAC_UID_LEN], series[AAC_UID_LEN], frame_of_ref[AAC_UID_LEN], instance[AAC_UID_LEN];
    char dimensions[AAC_UID_LEN], irradiation[AAC_UID_LEN];
};

aac_status fill(const aac_volume *v, const aac_ct_params *p, const Uids &u, DcmDataset &d, const char *path,
                aac_error *err) {
    const int X = v->dim[0], Y = v->dim[1], Z = v->dim[2];
    const double *D = v->direction;  // row-major, columns are the axes
    char series_number[16], frames[16];
    snprintf(series_number, sizeof series_number, "%d", p->series_number);
    snprintf(frames, sizeof frames, "%d", Z);
    const std::string when = std::string(p->study_date ? p->study_date : "") + (p->study_time ? p->study_time : "");

    Tags t{d};
    put_common(t, p, kEnhancedCT, u.instance, u.study, u.series, u.frame_of_ref, series_number);
    t.put(DCM_DeviceSerialNumber, "none", "DeviceSerialNumber");  // Enhanced General Equipment
    // Enhanced CT Image, Multi-frame Functional Groups, Acquisition Context
    t.put(DCM_ImageType, "DERIVED\\PRIMARY\\VOLUME\\NONE", "ImageType");
    t.put(DCM_InstanceNumber, "1", "InstanceNumber");
    t.put(DCM_ContentDate, p->study_date, "ContentDate");
    t.put(DCM_ContentTime, p->study_time, "ContentTime");
    t.put(DCM_AcquisitionDateTime, when.c_str(), "AcquisitionDateTime");
    t.put(DCM_AcquisitionNumber, "1", "AcquisitionNumber");
    t.put(DCM_ContentQualification, "RESEARCH", "ContentQualification");
    t.put(DCM_ImageComments, "Synthetic abdominal CT phantom with planted lesions (aaclip make-sample-study)",
          "ImageComments");
    t.put(DCM_BurnedInAnnotation, "NO", "BurnedInAnnotation");
    t.put(DCM_RecognizableVisualFeatures, "NO", "RecognizableVisualFeatures");
    t.put(DCM_LossyImageCompression, "00", "LossyImageCompression");
    t.put(DCM_PresentationLUTShape, "IDENTITY", "PresentationLUTShape");
    t.put(DCM_PixelPresentation, "MONOCHROME", "PixelPresentation");
    t.put(DCM_VolumetricProperties, "VOLUME", "VolumetricProperties");
    t.put(DCM_VolumeBasedCalculationTechnique, "NONE", "VolumeBasedCalculationTechnique");
    t.put(DCM_NumberOfFrames, frames, "NumberOfFrames");
    if (t.c.good()) t.c = d.insertEmptyElement(DCM_AcquisitionContextSequence), t.bad = "AcquisitionContextSequence";
    if (t.c.good()) t.bad = nullptr;
    // Image Pixel
    t.put16(DCM_SamplesPerPixel, 1, "SamplesPerPixel");
    t.put(DCM_PhotometricInterpretation, "MONOCHROME2", "PhotometricInterpretation");
    t.put16(DCM_Rows, (Uint16)Y, "Rows");
    t.put16(DCM_Columns, (Uint16)X, "Columns");
    t.put16(DCM_BitsAllocated, 16, "BitsAllocated");
    t.put16(DCM_BitsStored, 16, "BitsStored");
    t.put16(DCM_HighBit, 15, "HighBit");
    t.put16(DCM_PixelRepresentation, 1, "PixelRepresentation");

    // Multi-frame Dimension: one stack, frames by their position in it.
    if (DcmItem *o = t.item(DCM_DimensionOrganizationSequence, "DimensionOrganizationSequence")) {
        Tags a{*o};
        a.put(DCM_DimensionOrganizationUID, u.dimensions, "DimensionOrganizationUID");
        if (a.c.bad()) t.c = a.c, t.bad = a.bad;
    }
    t.put(DCM_DimensionOrganizationType, "3D", "DimensionOrganizationType");
    const DcmTagKey pointers[2] = {DCM_StackID, DCM_InStackPositionNumber};
    const char *labels[2] = {"Stack ID", "In-Stack Position Number"};
    for (int i = 0; i < 2 && t.c.good(); i++) {
        DcmItem *it = nullptr;
        t.c = d.findOrCreateSequenceItem(DCM_DimensionIndexSequence, it, -2);
        if (t.c.bad()) {
            t.bad = "DimensionIndexSequence";
            break;
        }
        Tags a{*it};
        if (a.c.good()) a.c = it->putAndInsertTagKey(DCM_DimensionIndexPointer, pointers[i]);
        if (a.c.good()) a.c = it->putAndInsertTagKey(DCM_FunctionalGroupPointer, DCM_FrameContentSequence);
        a.put(DCM_DimensionOrganizationUID, u.dimensions, "DimensionOrganizationUID");
        a.put(DCM_DimensionDescriptionLabel, labels[i], "DimensionDescriptionLabel");
        if (a.c.bad()) t.c = a.c, t.bad = a.bad ? a.bad : "DimensionIndexPointer";
    }

    // Shared functional groups.
    DcmItem *sh = t.item(DCM_SharedFunctionalGroupsSequence, "SharedFunctionalGroupsSequence");
    if (sh) {
        Tags s{*sh};
        if (DcmItem *pm = s.item(DCM_PixelMeasuresSequence, "PixelMeasuresSequence")) {
            Tags a{*pm};
            a.put(DCM_PixelSpacing, dsn(v->spacing[1]) + "\\" + dsn(v->spacing[0]), "PixelSpacing");
            a.put(DCM_SliceThickness, dsn(v->slice_thickness > 0 ? v->slice_thickness : v->spacing[2]),
                  "SliceThickness");
            a.put(DCM_SpacingBetweenSlices, dsn(v->spacing[2]), "SpacingBetweenSlices");
            if (a.c.bad()) s.c = a.c, s.bad = a.bad;
        }
        if (DcmItem *po = s.item(DCM_PlaneOrientationSequence, "PlaneOrientationSequence")) {
            Tags a{*po};
            a.put(DCM_ImageOrientationPatient,
                  dsn(D[0]) + "\\" + dsn(D[3]) + "\\" + dsn(D[6]) + "\\" + dsn(D[1]) + "\\" + dsn(D[4]) + "\\" +
                      dsn(D[7]),
                  "ImageOrientationPatient");
            if (a.c.bad()) s.c = a.c, s.bad = a.bad;
        }
        if (DcmItem *pv = s.item(DCM_PixelValueTransformationSequence, "PixelValueTransformationSequence")) {
            Tags a{*pv};
            a.put(DCM_RescaleIntercept, dsn(kIntercept), "RescaleIntercept");
            a.put(DCM_RescaleSlope, "1", "RescaleSlope");
            a.put(DCM_RescaleType, "HU", "RescaleType");
            if (a.c.bad()) s.c = a.c, s.bad = a.bad;
        }
        if (DcmItem *fa = s.item(DCM_FrameAnatomySequence, "FrameAnatomySequence")) anatomy(p->body_part, *fa, s);
        if (DcmItem *ft = s.item(DCM_CTImageFrameTypeSequence, "CTImageFrameTypeSequence")) {
            Tags a{*ft};
            a.put(DCM_FrameType, "DERIVED\\PRIMARY\\VOLUME\\NONE", "FrameType");
            a.put(DCM_PixelPresentation, "MONOCHROME", "PixelPresentation");
            a.put(DCM_VolumetricProperties, "VOLUME", "VolumetricProperties");
            a.put(DCM_VolumeBasedCalculationTechnique, "NONE", "VolumeBasedCalculationTechnique");
            if (a.c.bad()) s.c = a.c, s.bad = a.bad;
        }
        if (DcmItem *voi = s.item(DCM_FrameVOILUTSequence, "FrameVOILUTSequence")) {
            Tags a{*voi};
            a.put(DCM_WindowCenter, dsn(p->window_center), "WindowCenter");
            a.put(DCM_WindowWidth, dsn(p->window_width), "WindowWidth");
            if (a.c.bad()) s.c = a.c, s.bad = a.bad;
        }
        if (DcmItem *ie = s.item(DCM_IrradiationEventIdentificationSequence, "IrradiationEventIdentificationSequence")) {
            Tags a{*ie};
            a.put(DCM_IrradiationEventUID, u.irradiation, "IrradiationEventUID");
            if (a.c.bad()) s.c = a.c, s.bad = a.bad;
        }
        if (s.c.bad() && t.c.good()) t.c = s.c, t.bad = s.bad;
    }
    // Per-frame functional groups: the position of frame k, slice k of the volume.
    for (int k = 0; k < Z && t.c.good(); k++) {
        DcmItem *pf = t.item(DCM_PerFrameFunctionalGroupsSequence, "PerFrameFunctionalGroupsSequence");
        if (!pf) break;
        Tags f{*pf};
        double pos[3];
        for (int r = 0; r < 3; r++) pos[r] = v->origin[r] + D[r * 3 + 2] * v->spacing[2] * k;
        if (DcmItem *pp = f.item(DCM_PlanePositionSequence, "PlanePositionSequence")) {
            Tags a{*pp};
            a.put(DCM_ImagePositionPatient, dsn(pos[0]) + "\\" + dsn(pos[1]) + "\\" + dsn(pos[2]),
                  "ImagePositionPatient");
            if (a.c.bad()) f.c = a.c, f.bad = a.bad;
        }
        if (DcmItem *fc = f.item(DCM_FrameContentSequence, "FrameContentSequence")) {
            char in_stack[16];
            snprintf(in_stack, sizeof in_stack, "%d", k + 1);
            Tags a{*fc};
            a.put(DCM_StackID, "1", "StackID");
            a.put(DCM_InStackPositionNumber, in_stack, "InStackPositionNumber");
            const Uint32 index[2] = {1, (Uint32)k + 1};
            if (a.c.good()) a.c = fc->putAndInsertUint32Array(DCM_DimensionIndexValues, index, 2);
            if (a.c.bad()) f.c = a.c, f.bad = a.bad ? a.bad : "DimensionIndexValues";
        }
        if (f.c.bad()) t.c = f.c, t.bad = f.bad;
    }
    if (t.c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot set %s (%s)", path, t.bad, t.c.text());

    const size_t n = (size_t)X * Y * Z;
    std::vector<Uint16> px(n);
    for (size_t i = 0; i < n; i++) px[i] = stored(v->voxels[i]);
    OFCondition c = d.putAndInsertUint16Array(DCM_PixelData, px.data(), (unsigned long)n);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot set the pixel data (%s)", path, c.text());
    return AAC_OK;
}

}  // namespace

extern "C" aac_status aac_write_enhanced_ct(const aac_volume *v, const aac_ct_params *params, const char *path,
                                            aac_error *err) {
    aac_status st = check(v, path, "aac_write_enhanced_ct", 65535, err);
    if (st != AAC_OK) return st;
    if ((size_t)v->dim[0] * v->dim[1] * v->dim[2] * 2 > 0xFFFFFFF0u)
        return aac_fail(err, AAC_ERR_ARG, "%s: %s: %d x %d x %d frames exceed the 4 GiB of one pixel data element",
                        path, v->source, v->dim[0], v->dim[1], v->dim[2]);
    const aac_ct_params p = params ? *params : aac_ct_default_params();
    dcm_init();  // DCMTK's logger quietened (EWM_dontUpdateMeta warns)
    Uids u;
    aac_synth_uid(p.uid_seed, "study", 0, u.study);
    aac_synth_uid(p.uid_seed, "series", 0, u.series);
    aac_synth_uid(p.uid_seed, "frame-of-reference", 0, u.frame_of_ref);
    aac_synth_uid(p.uid_seed, "enhanced-instance", 0, u.instance);
    aac_synth_uid(p.uid_seed, "dimension-organization", 0, u.dimensions);
    aac_synth_uid(p.uid_seed, "irradiation-event", 0, u.irradiation);
    try {
        DcmFileFormat ff;
        if ((st = fill(v, &p, u, *ff.getDataset(), path, err)) != AAC_OK) return st;
        if ((st = set_meta(ff, kEnhancedCT, u.instance, path, err)) != AAC_OK) return st;
        return save(ff, path, err);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_NOMEM, "%s: %s", path, e.what());
    }
}
