// ct_write.h - what the two synthetic CT writers share (internal, C++): the series of single-
// frame CT images (ct_write.cpp) and the one Enhanced CT multi-frame object
// (ct_write_enhanced.cpp). Both write deterministic files: fixed File Meta, UIDs from a seed.
#ifndef AAC_CT_WRITE_H
#define AAC_CT_WRITE_H

#include <cmath>
#include <cstdio>

#include "aaclip_synth.h"
#include "dcm_out.h"

namespace ctw {

// Written into the File Meta header instead of DCMTK's own values, which change with the DCMTK
// release and would make a regenerated series differ from the shipped one. The class UID is
// aaclip's fixed UID (as the Device Observer UID); the version names the writers' layout.
constexpr char kImplementationVersion[] = "AACLIP_SYNTH_1";

constexpr double kIntercept = -1024.0;  // stored = HU + 1024: air near 0, as CT scanners store it
constexpr double kMinHU = -1024.0, kMaxHU = 3071.0;

// Attributes put one after the other; the first failure is kept with the attribute's name.
struct Tags {
    DcmItem &d;
    OFCondition c = EC_Normal;
    const char *bad = nullptr;  // the attribute that failed
    void put(const DcmTagKey &tag, const char *value, const char *name) {
        if (c.good() && (c = d.putAndInsertString(tag, value ? value : "")).bad()) bad = name;
    }
    void put(const DcmTagKey &tag, const OFString &value, const char *name) { put(tag, value.c_str(), name); }
    void put16(const DcmTagKey &tag, Uint16 value, const char *name) {
        if (c.good() && (c = d.putAndInsertUint16(tag, value)).bad()) bad = name;
    }
    // A new item of sequence seq (appended), or nullptr after a failure.
    DcmItem *item(const DcmTagKey &seq, const char *name) {
        DcmItem *it = nullptr;
        if (c.good() && (c = d.findOrCreateSequenceItem(seq, it, -2)).bad()) bad = name;
        return c.good() ? it : nullptr;
    }
};

// The modules both writers fill alike: SOP Common (class, instance, creation), Patient, General
// Study, General Series (and CT Series), Frame of Reference, General Equipment.
inline void put_common(Tags &t, const aac_ct_params *p, const char *sop_class, const char *instance,
                       const char *study, const char *series, const char *frame_of_ref, const char *series_number) {
    t.put(DCM_SOPClassUID, sop_class, "SOPClassUID");
    t.put(DCM_SOPInstanceUID, instance, "SOPInstanceUID");
    t.put(DCM_InstanceCreationDate, p->study_date, "InstanceCreationDate");
    t.put(DCM_InstanceCreationTime, p->study_time, "InstanceCreationTime");
    t.put(DCM_PatientName, p->patient_name, "PatientName");
    t.put(DCM_PatientID, p->patient_id, "PatientID");
    t.put(DCM_PatientBirthDate, p->patient_birth_date, "PatientBirthDate");
    t.put(DCM_PatientSex, p->patient_sex, "PatientSex");
    t.put(DCM_StudyInstanceUID, study, "StudyInstanceUID");
    t.put(DCM_StudyDate, p->study_date, "StudyDate");
    t.put(DCM_StudyTime, p->study_time, "StudyTime");
    t.put(DCM_ReferringPhysicianName, "", "ReferringPhysicianName");
    t.put(DCM_StudyID, p->study_id, "StudyID");
    t.put(DCM_AccessionNumber, p->accession_number, "AccessionNumber");
    t.put(DCM_StudyDescription, p->study_description, "StudyDescription");
    t.put(DCM_Modality, "CT", "Modality");
    t.put(DCM_SeriesInstanceUID, series, "SeriesInstanceUID");
    t.put(DCM_SeriesNumber, series_number, "SeriesNumber");
    t.put(DCM_SeriesDate, p->study_date, "SeriesDate");
    t.put(DCM_SeriesTime, p->study_time, "SeriesTime");
    t.put(DCM_SeriesDescription, p->series_description, "SeriesDescription");
    t.put(DCM_BodyPartExamined, p->body_part, "BodyPartExamined");
    t.put(DCM_PatientPosition, "HFS", "PatientPosition");
    t.put(DCM_FrameOfReferenceUID, frame_of_ref, "FrameOfReferenceUID");
    t.put(DCM_PositionReferenceIndicator, "", "PositionReferenceIndicator");
    t.put(DCM_Manufacturer, "aaclip synthetic", "Manufacturer");
    t.put(DCM_ManufacturerModelName, "aaclip make-sample-study", "ManufacturerModelName");
    t.put(DCM_SoftwareVersions, kImplementationVersion, "SoftwareVersions");
}

inline bool right_handed_orthonormal(const double *D) {
    // Columns are the axes: D[r * 3 + c].
    auto col = [&](int c, int r) { return D[r * 3 + c]; };
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double dot = 0;
            for (int r = 0; r < 3; r++) dot += col(a, r) * col(b, r);
            if (std::fabs(dot - (a == b ? 1.0 : 0.0)) > 1e-6) return false;
        }
    const double cross[3] = {col(0, 1) * col(1, 2) - col(0, 2) * col(1, 1),
                             col(0, 2) * col(1, 0) - col(0, 0) * col(1, 2),
                             col(0, 0) * col(1, 1) - col(0, 1) * col(1, 0)};
    double dot = 0;
    for (int r = 0; r < 3; r++) dot += cross[r] * col(2, r);
    return dot > 0.999999;
}

// What both writers need of the volume: one 3-D volume that fits rows/columns and max_slices,
// positive spacing, an orthonormal right-handed direction. who names the call in messages.
inline aac_status check(const aac_volume *v, const char *target, const char *who, int max_slices, aac_error *err) {
    if (!v || !v->voxels || !target || !target[0]) return aac_fail(err, AAC_ERR_ARG, "%s: no volume or output", who);
    if (v->dim[0] < 1 || v->dim[1] < 1 || v->dim[2] < 1 || v->dim[3] != 1)
        return aac_fail(err, AAC_ERR_ARG, "%s: %s: a CT needs one 3-D volume (dim %d x %d x %d x %d)", target,
                        v->source, v->dim[0], v->dim[1], v->dim[2], v->dim[3]);
    if (v->dim[0] > 65535 || v->dim[1] > 65535 || v->dim[2] > max_slices)
        return aac_fail(err, AAC_ERR_ARG, "%s: %s: %d x %d x %d does not fit rows/columns or %d slices", target,
                        v->source, v->dim[0], v->dim[1], v->dim[2], max_slices);
    for (int a = 0; a < 3; a++)
        if (!(v->spacing[a] > 0 && std::isfinite(v->spacing[a])))
            return aac_fail(err, AAC_ERR_ARG, "%s: %s: spacing %g along axis %d", target, v->source, v->spacing[a], a);
    if (!right_handed_orthonormal(v->direction))
        return aac_fail(err, AAC_ERR_ARG,
                        "%s: %s: direction is not orthonormal and right-handed (the slice axis must be row x column)",
                        target, v->source);
    return AAC_OK;
}

// The File Meta header, complete, so that DCMTK writes it unchanged (its own defaults name the
// DCMTK release, which would make a regenerated file differ from the shipped one).
inline aac_status set_meta(DcmFileFormat &ff, const char *sop_class, const char *sop_instance, const char *path,
                           aac_error *err) {
    DcmMetaInfo *m = ff.getMetaInfo();
    m->clear();
    const Uint8 version[2] = {0, 1};
    OFCondition c = m->putAndInsertUint8Array(DCM_FileMetaInformationVersion, version, 2);
    if (c.good()) c = m->putAndInsertString(DCM_MediaStorageSOPClassUID, sop_class);
    if (c.good()) c = m->putAndInsertString(DCM_MediaStorageSOPInstanceUID, sop_instance);
    if (c.good()) c = m->putAndInsertString(DCM_TransferSyntaxUID, UID_LittleEndianExplicitTransferSyntax);
    if (c.good()) c = m->putAndInsertString(DCM_ImplementationClassUID, AAC_DEVICE_UID);
    if (c.good()) c = m->putAndInsertString(DCM_ImplementationVersionName, kImplementationVersion);
    Uint32 length = 0;  // (0002,0000): bytes of the meta elements after it, always explicit VR LE
    for (unsigned long i = 0; c.good() && i < m->card(); i++)
        length += m->getElement(i)->calcElementLength(EXS_LittleEndianExplicit, EET_ExplicitLength);
    if (c.good()) c = m->putAndInsertUint32(DCM_FileMetaInformationGroupLength, length);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot build the File Meta header (%s)", path, c.text());
    return AAC_OK;
}

// Saves ff to a temporary file beside path and renames it; the meta header as set_meta left it.
inline aac_status save(DcmFileFormat &ff, const char *path, aac_error *err) {
    char tmp[4096];
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st != AAC_OK) return st;
    OFCondition c = ff.saveFile(tmp, EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0,
                                EWM_dontUpdateMeta);
    if (c.bad()) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write (%s)", path, c.text());
    }
    return fs_commit(tmp, path, err);
}

// DS text: whole numbers as integers ("120", not the "1.2e+02" of the shortest form).
inline OFString dsn(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)v);
        return OFString(b);
    }
    return dcmout::ds(v);
}

// Stored value of a HU value: rounded, clamped to [kMinHU, kMaxHU], NaN as air.
inline Uint16 stored(float hu_in) {
    double hu = std::isnan(hu_in) ? kMinHU : std::floor((double)hu_in + 0.5);
    hu = hu < kMinHU ? kMinHU : hu > kMaxHU ? kMaxHU : hu;
    return (Uint16)(Sint16)(hu - kIntercept);  // signed 16-bit samples (PixelRepresentation 1)
}

}  // namespace ctw

#endif
