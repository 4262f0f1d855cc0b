// ct_write.cpp - a volume as a CT Image Storage series (one file per slice) through DCMTK, with
// deterministic UIDs, fixed dates and a fixed File Meta header, so that the same volume and
// parameters give byte-identical files (the sample study in testdata/ is checked that way).
#include "ct_write.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "aaclip_synth.h"

namespace {

using namespace ctw;

// FNV-1a over the bytes with a given basis, then a splitmix64 finaliser for avalanche.
uint64_t hash64(const std::string &s, uint64_t h) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

// Makes dir (one level) and refuses IMnnnn.dcm files beyond this series.
aac_status prepare_dir(const char *dir, int n_slices, aac_error *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return aac_fail(err, AAC_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    aac_status st = AAC_OK;
    while (const dirent *e = readdir(d)) {
        const char *n = e->d_name;
        const bool ours = strlen(n) == 10 && !strncmp(n, "IM", 2) && !strcmp(n + 6, ".dcm") &&
                          isdigit((unsigned char)n[2]) && isdigit((unsigned char)n[3]) &&
                          isdigit((unsigned char)n[4]) && isdigit((unsigned char)n[5]);
        if (ours && atoi(n + 2) > n_slices) {
            st = aac_fail(err, AAC_ERR_ARG,
                          "%s: holds %s from a longer series, which would join this one; use an empty folder", dir,
                          e->d_name);
            break;
        }
    }
    closedir(d);
    return st;
}

struct Series {
    const aac_volume *v;
    const aac_ct_params *p;
    char study[AAC_UID_LEN], series[AAC_UID_LEN], frame_of_ref[AAC_UID_LEN];
};

// Every module of the CT Image IOD (PS3.3 A.3) that applies, for slice k.
aac_status fill(const Series &s, int k, DcmDataset &d, const char *path, aac_error *err) {
    const aac_volume *v = s.v;
    const aac_ct_params *p = s.p;
    const int X = v->dim[0], Y = v->dim[1];
    const double *D = v->direction;  // row-major, columns are the axes
    double pos[3];
    for (int r = 0; r < 3; r++) pos[r] = v->origin[r] + D[r * 3 + 2] * v->spacing[2] * k;
    char uid[AAC_UID_LEN], number[16], series_number[16];
    aac_synth_uid(p->uid_seed, "instance", k, uid);
    snprintf(number, sizeof number, "%d", k + 1);
    snprintf(series_number, sizeof series_number, "%d", p->series_number);

    Tags t{d};
    put_common(t, p, UID_CTImageStorage, uid, s.study, s.series, s.frame_of_ref, series_number);
    // General Acquisition, General Image
    t.put(DCM_AcquisitionNumber, "1", "AcquisitionNumber");
    t.put(DCM_AcquisitionDate, p->study_date, "AcquisitionDate");
    t.put(DCM_AcquisitionTime, p->study_time, "AcquisitionTime");
    t.put(DCM_InstanceNumber, number, "InstanceNumber");
    t.put(DCM_ContentDate, p->study_date, "ContentDate");
    t.put(DCM_ContentTime, p->study_time, "ContentTime");
    t.put(DCM_ImageType, "DERIVED\\SECONDARY\\AXIAL", "ImageType");
    t.put(DCM_DerivationDescription, "Synthetic phantom computed by aaclip; not patient data", "DerivationDescription");
    t.put(DCM_ImageComments, "Synthetic abdominal CT phantom with planted lesions (aaclip make-sample-study)",
          "ImageComments");
    t.put(DCM_BurnedInAnnotation, "NO", "BurnedInAnnotation");
    t.put(DCM_LossyImageCompression, "00", "LossyImageCompression");
    // Image Plane: PixelSpacing is (row spacing, column spacing) = (y, x).
    t.put(DCM_PixelSpacing, dsn(v->spacing[1]) + "\\" + dsn(v->spacing[0]), "PixelSpacing");
    t.put(DCM_ImageOrientationPatient,
          dsn(D[0]) + "\\" + dsn(D[3]) + "\\" + dsn(D[6]) + "\\" + dsn(D[1]) + "\\" + dsn(D[4]) + "\\" + dsn(D[7]),
          "ImageOrientationPatient");
    t.put(DCM_ImagePositionPatient, dsn(pos[0]) + "\\" + dsn(pos[1]) + "\\" + dsn(pos[2]), "ImagePositionPatient");
    t.put(DCM_SliceThickness, dsn(v->slice_thickness > 0 ? v->slice_thickness : v->spacing[2]), "SliceThickness");
    t.put(DCM_SpacingBetweenSlices, dsn(v->spacing[2]), "SpacingBetweenSlices");
    t.put(DCM_SliceLocation, dsn(pos[0] * D[2] + pos[1] * D[5] + pos[2] * D[8]), "SliceLocation");
    // Image Pixel, CT Image
    t.put16(DCM_SamplesPerPixel, 1, "SamplesPerPixel");
    t.put(DCM_PhotometricInterpretation, "MONOCHROME2", "PhotometricInterpretation");
    t.put16(DCM_Rows, (Uint16)Y, "Rows");
    t.put16(DCM_Columns, (Uint16)X, "Columns");
    t.put16(DCM_BitsAllocated, 16, "BitsAllocated");
    t.put16(DCM_BitsStored, 16, "BitsStored");
    t.put16(DCM_HighBit, 15, "HighBit");
    t.put16(DCM_PixelRepresentation, 1, "PixelRepresentation");
    t.put(DCM_RescaleIntercept, dsn(kIntercept), "RescaleIntercept");
    t.put(DCM_RescaleSlope, "1", "RescaleSlope");
    t.put(DCM_RescaleType, "HU", "RescaleType");
    t.put(DCM_KVP, dsn(p->kvp), "KVP");
    t.put(DCM_ReconstructionDiameter, dsn(X * v->spacing[0]), "ReconstructionDiameter");
    // VOI LUT
    t.put(DCM_WindowCenter, dsn(p->window_center), "WindowCenter");
    t.put(DCM_WindowWidth, dsn(p->window_width), "WindowWidth");
    t.put(DCM_WindowCenterWidthExplanation, p->body_part, "WindowCenterWidthExplanation");
    if (t.c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot set %s (%s)", path, t.bad, t.c.text());

    const size_t plane = (size_t)X * Y;
    std::vector<Uint16> px(plane);
    const float *src = v->voxels + (size_t)k * plane;
    for (size_t i = 0; i < plane; i++) px[i] = stored(src[i]);
    OFCondition c = d.putAndInsertUint16Array(DCM_PixelData, px.data(), (unsigned long)plane);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot set the pixel data (%s)", path, c.text());
    return AAC_OK;
}

}  // namespace

extern "C" aac_ct_params aac_ct_default_params(void) {
    aac_ct_params p{};
    p.uid_seed = 1;
    p.patient_name = "AACLIP^SYNTHETIC";
    p.patient_id = "AACLIP-SAMPLE";
    p.patient_sex = "O";
    p.patient_birth_date = "";
    p.study_date = "20240101";
    p.study_time = "120000";
    p.study_id = "1";
    p.accession_number = "";
    p.study_description = "aaclip sample study (synthetic)";
    p.series_description = "Synthetic abdomen CT with lesions";
    p.body_part = "ABDOMEN";
    p.series_number = 1;
    p.window_center = 40;
    p.window_width = 400;
    p.kvp = 120;
    return p;
}

extern "C" void aac_synth_uid(uint64_t seed, const char *role, int index, char out[AAC_UID_LEN]) {
    const std::string key = "aaclip-synthetic/" + std::to_string(seed) + "/" + (role ? role : "") + "/" +
                            std::to_string(index);
    const uint64_t hi = hash64(key, 0xCBF29CE484222325ull), lo = hash64(key, 0x84222325CBF29CE4ull ^ hi);
    uint8_t b[16];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hi >> (56 - 8 * i)), b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x80);  // UUID version 8 (custom), RFC 9562 variant
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    out_uid_from_bytes(b, out);
}

extern "C" aac_status aac_write_ct_series(const aac_volume *v, const aac_ct_params *params, const char *dir,
                                          aac_error *err) {
    aac_status st = check(v, dir, "aac_write_ct_series", 9999, err);
    if (st != AAC_OK) return st;
    const aac_ct_params p = params ? *params : aac_ct_default_params();
    if ((st = prepare_dir(dir, v->dim[2], err)) != AAC_OK) return st;
    dcm_init();  // DCMTK's logger quietened (EWM_dontUpdateMeta warns on every file)
    Series s{v, &p, {}, {}, {}};
    aac_synth_uid(p.uid_seed, "study", 0, s.study);
    aac_synth_uid(p.uid_seed, "series", 0, s.series);
    aac_synth_uid(p.uid_seed, "frame-of-reference", 0, s.frame_of_ref);
    try {
        for (int k = 0; k < v->dim[2]; k++) {
            char path[4096];
            if (snprintf(path, sizeof path, "%s/IM%04d.dcm", dir, k + 1) >= (int)sizeof path)
                return aac_fail(err, AAC_ERR_ARG, "%s: path too long", dir);
            DcmFileFormat ff;
            if ((st = fill(s, k, *ff.getDataset(), path, err)) != AAC_OK) return st;
            char uid[AAC_UID_LEN];
            aac_synth_uid(p.uid_seed, "instance", k, uid);
            if ((st = set_meta(ff, UID_CTImageStorage, uid, path, err)) != AAC_OK) return st;
            if ((st = save(ff, path, err)) != AAC_OK) return st;
        }
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_NOMEM, "%s: %s", dir, e.what());
    }
    return AAC_OK;
}
