// dcm_header.cpp - DCMTK wrapper: one file's header attributes into dcm_file / dcm_frame.
// Only attribute extraction lives here; grouping, geometry and decoding decisions are in C.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#include "dcm_load.h"
#include "ingest.h"

extern "C" {
#include "error.h"
}

namespace {

// Big elements (pixel data, CSA blobs) stay on disk until asked for: the scan reads headers only.
constexpr Uint32 kMaxReadLength = 4096;

const char kSegStorage[] = "1.2.840.10008.5.1.4.1.1.66.4";
const char kDicomdir[] = "1.2.840.10008.1.3.10";

void get_str(DcmItem *it, const DcmTagKey &tag, char *dst, size_t cap) {
    OFString v;
    if (it && it->findAndGetOFStringArray(tag, v).good()) copy_trim(dst, cap, v.c_str());
}

int get_int(DcmItem *it, const DcmTagKey &tag, int dflt) {
    Sint32 v;
    if (it && it->findAndGetSint32(tag, v).good()) return (int)v;
    Uint16 u;
    if (it && it->findAndGetUint16(tag, u).good()) return (int)u;
    Sint16 i16;
    if (it && it->findAndGetSint16(tag, i16).good()) return (int)i16;
    return dflt;
}

double get_f64(DcmItem *it, const DcmTagKey &tag, double dflt, unsigned long pos = 0) {
    Float64 v;
    if (it && it->findAndGetFloat64(tag, v, pos).good() && std::isfinite(v)) return v;
    return dflt;
}

// n (<= 6) values of a multi-valued numeric attribute; 1 when all are present and finite. out
// is left as it was otherwise (a per-frame value that fails keeps the shared one).
int get_f64n(DcmItem *it, const DcmTagKey &tag, double *out, int n) {
    if (!it) return 0;
    double v[6];
    for (int i = 0; i < n; i++)
        if (it->findAndGetFloat64(tag, v[i], (unsigned long)i).bad() || !std::isfinite(v[i])) return 0;
    memcpy(out, v, (size_t)n * sizeof *v);
    return 1;
}

// Position, orientation and pixel spacing, each only when plausible (geometry.c).
int get_position(DcmItem *it, double out[3]) {
    double p[3];
    if (!get_f64n(it, DCM_ImagePositionPatient, p, 3) || !geom_position_ok(p)) return 0;
    memcpy(out, p, sizeof p);
    return 1;
}

int get_orientation(DcmItem *it, double out[6]) {
    double o[6];
    if (!get_f64n(it, DCM_ImageOrientationPatient, o, 6) || !geom_orientation_ok(o)) return 0;
    memcpy(out, o, sizeof o);
    return 1;
}

int get_spacing(DcmItem *it, const DcmTagKey &tag, double out[2]) {
    double s[2];
    if (!get_f64n(it, tag, s, 2) || !geom_spacing_ok(s[0]) || !geom_spacing_ok(s[1])) return 0;
    memcpy(out, s, sizeof s);
    return 1;
}

// A thickness or spacing between slices: the value when plausible, else dflt.
double get_length(DcmItem *it, const DcmTagKey &tag, double dflt) {
    const double v = get_f64(it, tag, dflt);
    return geom_spacing_ok(v) ? v : dflt;
}

DcmItem *first_item(DcmItem *it, const DcmTagKey &seq) {
    DcmItem *sub = nullptr;
    if (it && it->findAndGetSequenceItem(seq, sub, 0).good()) return sub;
    return nullptr;
}

// Values 3 on of a type ("ORIGINAL\PRIMARY\M\ND\MOSAIC" -> "M\ND"), MOSAIC removed: the part
// that tells magnitude from phase, localizer from axial.
void type_key(const char *image_type, char *dst, size_t cap) {
    const char *p = image_type;
    for (int i = 0; i < 2 && p; i++) {
        p = strchr(p, '\\');
        if (p) p++;
    }
    char buf[AAC_LO_LEN] = "";
    if (p) copy_trim(buf, sizeof buf, p);
    char *m = strstr(buf, "\\MOSAIC");
    if (m) *m = '\0';
    if (!strcmp(buf, "MOSAIC")) buf[0] = '\0';
    copy_trim(dst, cap, buf);
}

// 1 when some occurrence of tag anywhere in the dataset (nested items too) has a value that
// pred accepts. dcm2niix reads attributes wherever they are (a Philips EchoPlanarPulseSequence
// may sit in a nested item only), and its voxel order depends on them.
template <typename Pred>
int any_value(DcmItem *ds, const DcmTagKey &tag, Pred pred) {
    DcmStack stack;
    E_SearchMode mode = ESM_fromHere;
    while (ds->search(tag, stack, mode, OFTrue).good()) {
        mode = ESM_afterStackTop;
        DcmObject *o = stack.top();
        OFString v;
        if (o && o->isLeaf() && static_cast<DcmElement *>(o)->getOFStringArray(v).good() && pred(v.c_str())) return 1;
    }
    return 0;
}

// Private blocks (Siemens, Philips) are found by their creator, not by a fixed element number.
int private_block(DcmItem *ds, Uint16 group, const char *creator) {
    for (Uint16 e = 0x10; e <= 0xFF; e++) {
        OFString c;
        if (ds->findAndGetOFString(DcmTagKey(group, e), c).good() && c == creator) return e;
    }
    return -1;
}

// 1 when a type says the image is derived, or is one of the diffusion maps dcm2niix keeps out of
// the acquired series (ADC, trace, FA): value 1 DERIVED, or a value ADC / TRACEW / TRACE / FA.
int type_derived(const char *type) {
    char buf[AAC_LO_LEN];
    copy_trim(buf, sizeof buf, type);
    int k = 0;
    for (char *p = buf; p; k++) {
        char *end = strchr(p, '\\');
        if (end) *end = '\0';
        if ((k == 0 && !strcmp(p, "DERIVED")) || !strcmp(p, "ADC") || !strcmp(p, "TRACEW") || !strcmp(p, "TRACE") ||
            !strcmp(p, "FA"))
            return 1;
        p = end ? end + 1 : nullptr;
    }
    return 0;
}

// Diffusion: an isotropic (trace) image is b > 0 without a direction. The standard says so in
// DiffusionDirectionality; Philips also writes it as a zero gradient vector, which dcm2niix
// takes as "derived isotropic, not a DWI volume".
struct diffusion {
    double b = -1;            // < 0 absent
    int has_vec = 0;
    double vec[3] = {0, 0, 0};
    int isotropic = 0;        // DiffusionDirectionality ISOTROPIC
};

void diffusion_read(DcmItem *it, diffusion *d) {
    if (!it) return;
    char dir[AAC_CS_LEN] = "";
    get_str(it, DCM_DiffusionDirectionality, dir, sizeof dir);
    if (!strcmp(dir, "ISOTROPIC")) d->isotropic = 1;
    d->b = get_f64(it, DCM_DiffusionBValue, d->b);
    double v[3];
    if (get_f64n(it, DCM_DiffusionGradientOrientation, v, 3)) {
        memcpy(d->vec, v, sizeof v);
        d->has_vec = 1;
    }
    if (DcmItem *gd = first_item(it, DCM_DiffusionGradientDirectionSequence))
        if (get_f64n(gd, DCM_DiffusionGradientOrientation, v, 3)) {
            memcpy(d->vec, v, sizeof v);
            d->has_vec = 1;
        }
}

int diffusion_isotropic(const diffusion &d, bool philips) {
    if (d.isotropic) return 1;
    return philips && d.b > 0 && d.has_vec && d.vec[0] == 0 && d.vec[1] == 0 && d.vec[2] == 0;
}

// Philips stores a second, "floating point" scale in private (2005,100E) (creator
// "Philips MR Imaging DD 001"); dcm2niix converts to FP = DV / (RS * SS) by default, and keeps
// the display value for maps whose real-world units are Hz (field maps). We do the same so
// values equal the dcm2niix reference.
void philips_scale(DcmItem *it, bool philips, DcmItem *rwv, dcm_frame *fr) {
    if (!philips || !it) return;
    OFString creator;
    if (it->findAndGetOFString(DcmTagKey(0x2005, 0x0010), creator).bad() ||
        creator != "Philips MR Imaging DD 001")
        return;
    Float32 ss;
    if (it->findAndGetFloat32(DcmTagKey(0x2005, 0x100E), ss).bad() || !(std::fabs(ss) > 0) ||
        !std::isfinite(ss))
        return;
    if (rwv) {
        DcmItem *units = first_item(rwv, DCM_MeasurementUnitsCodeSequence);
        OFString code;
        if (units && units->findAndGetOFString(DCM_CodeValue, code).good() && code == "Hz") return;
    }
    const double rs = fr->slope, ri = fr->intercept;
    if (!(std::fabs(rs) > 0)) return;
    fr->slope = 1.0 / ss;
    fr->intercept = ri / (rs * ss);
}

// Shared then per-frame functional groups (per-frame values win).
void functional_groups(DcmItem *g, dcm_frame *fr, bool philips) {
    if (!g) return;
    if (DcmItem *pp = first_item(g, DCM_PlanePositionSequence))
        if (get_position(pp, fr->ipp)) fr->has_ipp = 1;
    if (DcmItem *po = first_item(g, DCM_PlaneOrientationSequence))
        if (get_orientation(po, fr->iop)) fr->has_iop = 1;
    if (DcmItem *pm = first_item(g, DCM_PixelMeasuresSequence)) {
        if (get_spacing(pm, DCM_PixelSpacing, fr->ps)) fr->has_ps = 1;
        fr->thickness = get_length(pm, DCM_SliceThickness, fr->thickness);
    }
    if (DcmItem *pv = first_item(g, DCM_PixelValueTransformationSequence)) {
        fr->slope = get_f64(pv, DCM_RescaleSlope, fr->slope);
        fr->intercept = get_f64(pv, DCM_RescaleIntercept, fr->intercept);
    }
    if (DcmItem *fc = first_item(g, DCM_FrameContentSequence))
        fr->temporal = get_int(fc, DCM_TemporalPositionIndex, fr->temporal);
    DcmItem *ft = first_item(g, DCM_MRImageFrameTypeSequence);
    if (!ft) ft = first_item(g, DCM_CTImageFrameTypeSequence);
    if (!ft) ft = first_item(g, DCM_PETFrameTypeSequence);
    if (ft) {
        char t[AAC_LO_LEN] = "";
        get_str(ft, DCM_FrameType, t, sizeof t);
        type_key(t, fr->frame_type, sizeof fr->frame_type);
        fr->derived = type_derived(t);
    }
    // Echoes of an enhanced multi-echo acquisition may carry no EchoNumbers, only the frame's
    // EffectiveEchoTime: that is what tells them apart (series.c splits on it, as dcm2niix).
    if (DcmItem *me = first_item(g, DCM_MREchoSequence))
        fr->echo_time = get_f64(me, DCM_EffectiveEchoTime, fr->echo_time);
    if (DcmItem *md = first_item(g, DCM_MRDiffusionSequence)) {
        diffusion d;
        diffusion_read(md, &d);
        if (diffusion_isotropic(d, philips)) fr->isotropic = 1;
    }
    // Philips per-frame private item (2005,140F) carries the frame's own scale slope, echo
    // number and echo time.
    DcmItem *rwv = first_item(g, DCM_RealWorldValueMappingSequence);
    if (DcmItem *pr = first_item(g, DcmTagKey(0x2005, 0x140F))) {
        fr->echo_number = get_int(pr, DCM_EchoNumbers, fr->echo_number);
        fr->echo_time = get_f64(pr, DCM_EchoTime, fr->echo_time);
        philips_scale(pr, philips, rwv, fr);
    }
}

// Philips classic diffusion: b value in (2001,xx03), gradient in (2005,xxB0..B2), private
// blocks found by their creator.
void philips_diffusion(DcmDataset *ds, diffusion *d) {
    int b = private_block(ds, 0x2001, "Philips Imaging DD 001");
    if (b >= 0 && d->b < 0) {
        Float32 v;
        if (ds->findAndGetFloat32(DcmTagKey(0x2001, (Uint16)((b << 8) | 0x03)), v).good() && std::isfinite(v)) d->b = v;
    }
    int m = private_block(ds, 0x2005, "Philips MR Imaging DD 001");
    if (m >= 0 && !d->has_vec) {
        Float32 v[3];
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++)
            ok = ds->findAndGetFloat32(DcmTagKey(0x2005, (Uint16)((m << 8) | (0xB0 + i))), v[i]).good() &&
                 std::isfinite(v[i]);
        if (ok) {
            for (int i = 0; i < 3; i++) d->vec[i] = v[i];
            d->has_vec = 1;
        }
    }
}

// Photometric interpretations we decode, and the grey they give: MONOCHROME1/2 as stored;
// RGB to Rec. 601 luma; YBR_FULL / YBR_FULL_422 (native or as a decoder leaves them) by their
// Y, which is that luma. 0 when supported, else the reason (names the interpretation).
const char *photometric_problem(const dcm_file &f, char *why, size_t cap) {
    const char *pi = f.photometric;
    if (f.spp == 1) {
        if (!pi[0] || !strcmp(pi, "MONOCHROME1") || !strcmp(pi, "MONOCHROME2")) return nullptr;
        if (!strcmp(pi, "PALETTE COLOR")) {
            snprintf(why, cap, "PhotometricInterpretation PALETTE COLOR (colour lookup table) is not supported");
            return why;
        }
        snprintf(why, cap, "PhotometricInterpretation %s is not supported with 1 sample per pixel", pi);
        return why;
    }
    static const char *const native[] = {"RGB", "YBR_FULL", "YBR_FULL_422"};
    static const char *const coded[] = {"YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT"};
    for (const char *ok : native)
        if (!strcmp(pi, ok)) return nullptr;
    for (const char *ok : coded)
        if (!strcmp(pi, ok)) {
            if (f.encapsulated) return nullptr;  // the codec turns it into RGB
            snprintf(why, cap, "PhotometricInterpretation %s in uncompressed pixel data is not supported", pi);
            return why;
        }
    snprintf(why, cap, "PhotometricInterpretation %s with %d samples per pixel is not supported",
             pi[0] ? pi : "(absent)", f.spp);
    return why;
}

// GE keeps phase, real and imaginary images and the Hz field map of a B0map series in one
// series with ImageType ORIGINAL\PRIMARY\OTHER for all: RawDataType (0043,xx2F) says 1/2/3 for
// phase/real/imaginary, and a B0map sequence (PulseSequenceName (0019,xx9C) "b0map", or
// InternalPulseSequenceName (0019,xx9E) "B0map") stores the field map [Hz] as its first volume
// (instance number <= LocationsInAcquisition (0021,xx4F)) and the magnitude after it; an
// epi_pepolar series holds both phase-encoding polarities. The type key gets a value for each,
// so series.c keeps them apart as dcm2niix does.
void ge_types(DcmDataset *ds, const dcm_file &f, dcm_frame *base) {
    const char *add = nullptr;
    int p = private_block(ds, 0x0043, "GEMS_PARM_01");
    if (p >= 0) {
        static const char *const kind[] = {nullptr, "PHASE", "REAL", "IMAGINARY"};
        const int t = get_int(ds, DcmTagKey(0x0043, (Uint16)((p << 8) | 0x2F)), 0);
        if (t >= 1 && t <= 3) add = kind[t];
    }
    int a = private_block(ds, 0x0019, "GEMS_ACQU_01"), r = private_block(ds, 0x0021, "GEMS_RELA_01");
    if (a >= 0 && r >= 0) {
        char seq[AAC_LO_LEN] = "", internal[AAC_LO_LEN] = "";
        get_str(ds, DcmTagKey(0x0019, (Uint16)((a << 8) | 0x9C)), seq, sizeof seq);
        get_str(ds, DcmTagKey(0x0019, (Uint16)((a << 8) | 0x9E)), internal, sizeof internal);
        const int locations = get_int(ds, DcmTagKey(0x0021, (Uint16)((r << 8) | 0x4F)), 0);
        const int images = get_int(ds, DCM_ImagesInAcquisition, 0);
        if ((strstr(seq, "b0map") || !strcmp(internal, "B0map")) && locations > 0 && images > locations &&
            f.instance_number > 0 && f.instance_number <= locations)
            add = "B0MAP_HZ";
        // epi_pepolar acquires both phase-encoding polarities in one series (UserData12
        // (0019,xxB3): 2 = reversed then forward, 3 = forward then reversed, by temporal
        // position): the two are different acquisitions (dcm2niix adds 1000 to the series
        // number of the reversed volumes).
        const int mode = (int)std::lround(get_f64(ds, DcmTagKey(0x0019, (Uint16)((a << 8) | 0xB3)), 0));
        const int vol = get_int(ds, DCM_TemporalPositionIdentifier, 0);
        if (strstr(seq, "epi_pepolar") && vol > 0 && ((mode == 2 && vol % 2 == 1) || (mode == 3 && vol % 2 == 0)))
            add = "PEPOLAR_REVERSED";
    }
    if (!add) return;
    const size_t n = strlen(base->frame_type);
    snprintf(base->frame_type + n, sizeof base->frame_type - n, "%s%s", n ? "\\" : "", add);
}

void siemens_csa(DcmDataset *ds, dcm_file *f) {
    int b = private_block(ds, 0x0029, "SIEMENS CSA HEADER");
    if (b >= 0) {
        const Uint8 *data = nullptr;
        unsigned long len = 0;
        DcmElement *el = nullptr;
        if (ds->findAndGetElement(DcmTagKey(0x0029, (Uint16)((b << 8) | 0x10)), el).good() && el &&
            el->getUint8Array(const_cast<Uint8 *&>(data)).good() && data) {
            len = el->getLength();
            int mosaic = 0;
            csa_parse_slice(data, len, &mosaic, &f->has_csa_normal, f->csa_normal, &f->csa_slice);
            if (strstr(f->image_type, "MOSAIC")) f->mosaic_images = mosaic;
        }
    }
    if (f->mosaic_images == 0 && strstr(f->image_type, "MOSAIC")) {  // older files: (0019,xx0A)
        int m = private_block(ds, 0x0019, "SIEMENS MR HEADER");
        if (m >= 0) f->mosaic_images = get_int(ds, DcmTagKey(0x0019, (Uint16)((m << 8) | 0x0A)), 0);
    }
}

}  // namespace

namespace {

aac_status read_header(aac_scan *s, const char *path, aac_error *err) {
    DcmFileFormat ff;
    bool gz = false;
    OFCondition c = dcm_load_file(ff, path, kMaxReadLength, &gz);
    if (c.bad() && gz && c.code() == kGzipFailed) return aac_fail(err, AAC_ERR_FORMAT, "%s: %s", path, c.text());
    if (c.bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: %sDICOM file cannot be parsed, truncated or corrupt (%s)", path,
                        gz ? "gzip-compressed " : "", c.text());
    DcmDataset *ds = ff.getDataset();
    DcmMetaInfo *meta = ff.getMetaInfo();

    dcm_file f;
    memset(&f, 0, sizeof f);
    f.gzipped = gz;
    get_str(meta, DCM_TransferSyntaxUID, f.ts_uid, sizeof f.ts_uid);
    // No meta header: the syntax DCMTK detected.
    if (!f.ts_uid[0]) copy_trim(f.ts_uid, sizeof f.ts_uid, DcmXfer(ds->getOriginalXfer()).getXferID());
    get_str(ds, DCM_SOPClassUID, f.sop_class, sizeof f.sop_class);
    if (!f.sop_class[0]) get_str(meta, DCM_MediaStorageSOPClassUID, f.sop_class, sizeof f.sop_class);
    if (!strcmp(f.sop_class, kDicomdir) || ds->tagExists(DCM_DirectoryRecordSequence))
        return aac_fail(err, AAC_ERR_MISSING,
                        "%s: DICOMDIR index, skipped (its images are found by walking the folder)", path);
    if (!strcmp(f.sop_class, kSegStorage))
        return aac_fail(err, AAC_ERR_MISSING, "%s: segmentation object, not an image series", path);
    if (!ds->tagExists(DCM_PixelData)) {
        const bool image = f.sop_class[0] && dcmIsImageStorageSOPClassUID(f.sop_class);
        if (ds->tagExists(DCM_FloatPixelData) || ds->tagExists(DCM_DoubleFloatPixelData))
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: float pixel data is not supported", path);
        if (image || ds->tagExists(DCM_Rows))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: image object without pixel data", path);
        const char *name = dcmFindNameOfUID(f.sop_class, nullptr);
        return aac_fail(err, AAC_ERR_MISSING, "%s: not an image (%s), skipped", path,
                        name ? name : (f.sop_class[0] ? f.sop_class : "no SOP class"));
    }

    get_str(ds, DCM_SOPInstanceUID, f.sop_uid, sizeof f.sop_uid);
    get_str(ds, DCM_SeriesInstanceUID, f.series_uid, sizeof f.series_uid);
    get_str(ds, DCM_StudyInstanceUID, f.study_uid, sizeof f.study_uid);
    get_str(ds, DCM_FrameOfReferenceUID, f.for_uid, sizeof f.for_uid);
    get_str(ds, DCM_PatientID, f.patient_id, sizeof f.patient_id);
    get_str(ds, DCM_SeriesDescription, f.series_desc, sizeof f.series_desc);
    get_str(ds, DCM_StudyDescription, f.study_desc, sizeof f.study_desc);
    get_str(ds, DCM_Manufacturer, f.manufacturer, sizeof f.manufacturer);
    get_str(ds, DCM_ImageType, f.image_type, sizeof f.image_type);
    get_str(ds, DCM_Modality, f.modality, sizeof f.modality);
    get_str(ds, DCM_BodyPartExamined, f.body_part, sizeof f.body_part);
    get_str(ds, DCM_PhotometricInterpretation, f.photometric, sizeof f.photometric);
    f.series_number = get_int(ds, DCM_SeriesNumber, -1);
    f.instance_number = get_int(ds, DCM_InstanceNumber, 0);
    f.temporal_position = get_int(ds, DCM_TemporalPositionIdentifier, 0);
    f.echo_number = get_int(ds, DCM_EchoNumbers, 0);
    // With the instance number, these tell a repeated acquisition at one position from a
    // second copy of the same image (series.c).
    f.acquisition_number = get_int(ds, DCM_AcquisitionNumber, 0);
    get_str(ds, DCM_AcquisitionTime, f.acquisition_time, sizeof f.acquisition_time);
    if (!f.acquisition_time[0]) get_str(ds, DCM_AcquisitionDateTime, f.acquisition_time, sizeof f.acquisition_time);
    f.echo_time = get_f64(ds, DCM_EchoTime, 0);
    f.repetition_time = get_f64(ds, DCM_RepetitionTime, 0);
    f.rows = get_int(ds, DCM_Rows, 0);
    f.cols = get_int(ds, DCM_Columns, 0);
    f.spp = get_int(ds, DCM_SamplesPerPixel, 1);
    f.planar = get_int(ds, DCM_PlanarConfiguration, 0);
    f.bits_alloc = get_int(ds, DCM_BitsAllocated, 0);
    f.bits_stored = get_int(ds, DCM_BitsStored, f.bits_alloc);
    f.high_bit = get_int(ds, DCM_HighBit, f.bits_stored - 1);
    f.pixel_rep = get_int(ds, DCM_PixelRepresentation, 0);
    f.n_frames = get_int(ds, DCM_NumberOfFrames, 1);
    f.slice_thickness = get_length(ds, DCM_SliceThickness, 0);
    f.slice_spacing = get_length(ds, DCM_SpacingBetweenSlices, 0);
    if (f.n_frames < 1) f.n_frames = 1;
    // dcm2niix stores 3-D (non-EPI) acquisitions in the orthogonal orientation nearest to its
    // space; these say whether a series is one (series.c, aac_series_info.nifti_axes).
    char acq[AAC_CS_LEN] = "";
    get_str(ds, DCM_MRAcquisitionType, acq, sizeof acq);
    f.mr_3d = !strcmp(acq, "3D");
    if (!strcmp(f.modality, "MR"))
        f.epi = any_value(ds, DCM_ScanningSequence, [](const char *v) { return strstr(v, "EP") != nullptr; }) ||
                any_value(ds, DCM_EchoPlanarPulseSequence, [](const char *v) { return v[0] == 'Y'; });

    if (f.rows <= 0 || f.cols <= 0 || f.rows > 65535 || f.cols > 65535)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: bad image size %d x %d", path, f.cols, f.rows);
    if (f.bits_alloc != 8 && f.bits_alloc != 16 && f.bits_alloc != 32)
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: BitsAllocated %d is not supported", path, f.bits_alloc);
    if (f.bits_stored < 1 || f.bits_stored > f.bits_alloc || f.high_bit < f.bits_stored - 1 ||
        f.high_bit >= f.bits_alloc)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: inconsistent BitsStored %d / HighBit %d", path,
                        f.bits_stored, f.high_bit);
    if (f.spp != 1 && f.spp != 3)
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: SamplesPerPixel %d is not supported", path, f.spp);
    DcmXfer xfer(ds->getOriginalXfer());
    f.encapsulated = xfer.isEncapsulated() ? 1 : 0;
    if (!ts_decodable(f.ts_uid))
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: transfer syntax %s (%s) cannot be decoded by this build",
                        path, f.ts_uid, aac_transfer_syntax_name(f.ts_uid));
    char why[160];
    if (photometric_problem(f, why, sizeof why)) return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %s", path, why);
    if (!f.encapsulated && !strcmp(f.photometric, "YBR_FULL")) f.ybr = 1;
    if (!f.encapsulated && !strcmp(f.photometric, "YBR_FULL_422")) {
        f.ybr = 2;  // two pixels share one Cb and one Cr: Y1 Y2 Cb Cr
        if (f.cols % 2 || f.planar)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: PhotometricInterpretation YBR_FULL_422 needs an even number "
                            "of columns and PlanarConfiguration 0 (%d columns, planar %d)", path, f.cols, f.planar);
    }

    // Pixel data that the file cannot hold means a truncated copy: refuse it here, where the
    // user learns which file, rather than failing the whole series at decode time.
    DcmElement *px = nullptr;
    ds->findAndGetElement(DCM_PixelData, px);
    size_t expect = (size_t)f.rows * f.cols * f.spp * (f.bits_alloc / 8) * (size_t)f.n_frames;
    if (f.ybr == 2) expect = expect / 3 * 2;
    if (px && !f.encapsulated) {
        Uint32 len = px->getLength();
        struct stat sb;
        if (len == DCM_UndefinedLength || len < expect)
            return aac_fail(err, AAC_ERR_FORMAT,
                            "%s: pixel data holds %lu bytes, %zu expected for %d x %d x %d frame(s), %d bits "
                            "allocated, %d sample(s) per pixel, %s", path, (unsigned long)len, expect, f.cols, f.rows,
                            f.n_frames, f.bits_alloc, f.spp, f.photometric[0] ? f.photometric : "MONOCHROME2");
        // Only a plain file holds its pixel data byte for byte (deflated and gzipped ones are smaller).
        if (!gz && strcmp(f.ts_uid, "1.2.840.10008.1.2.1.99") && stat(path, &sb) == 0 && (size_t)sb.st_size < expect)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: truncated (%lld bytes, pixel data alone needs %zu)",
                            path, (long long)sb.st_size, expect);
    }

    const bool philips = strncmp(f.manufacturer, "Philips", 7) == 0 || strncmp(f.manufacturer, "PHILIPS", 7) == 0;
    if (philips && !acq[0]) {  // Philips' private MR Acquisition Type
        int m = private_block(ds, 0x2005, "Philips MR Imaging DD 001");
        if (m >= 0) {
            get_str(ds, DcmTagKey(0x2005, (Uint16)((m << 8) | 0x6F)), acq, sizeof acq);
            f.mr_3d = !strcmp(acq, "3D");
        }
    }
    f.csa_slice = -1;
    if (strncmp(f.manufacturer, "SIEMENS", 7) == 0 || strncmp(f.manufacturer, "Siemens", 7) == 0) siemens_csa(ds, &f);

    // Frame template from the top-level (classic) attributes.
    dcm_frame base;
    memset(&base, 0, sizeof base);
    base.tile = -1;
    base.rows = f.rows;
    base.cols = f.cols;
    base.slope = 1.0;
    base.intercept = 0.0;
    base.has_ipp = get_position(ds, base.ipp);
    base.has_iop = get_orientation(ds, base.iop);
    base.has_ps = get_spacing(ds, DCM_PixelSpacing, base.ps);
    if (!base.has_ps) base.has_ps = get_spacing(ds, DCM_ImagerPixelSpacing, base.ps);
    base.slope = get_f64(ds, DCM_RescaleSlope, 1.0);
    base.intercept = get_f64(ds, DCM_RescaleIntercept, 0.0);
    base.temporal = f.temporal_position;
    base.echo_number = f.echo_number;
    base.echo_time = f.echo_time;
    base.thickness = f.slice_thickness;
    type_key(f.image_type, base.frame_type, sizeof base.frame_type);
    base.derived = type_derived(f.image_type);
    if (!strncmp(f.manufacturer, "GE", 2)) ge_types(ds, f, &base);
    {
        diffusion d;
        diffusion_read(ds, &d);
        if (philips) philips_diffusion(ds, &d);
        base.isotropic = diffusion_isotropic(d, philips);
    }
    philips_scale(ds, philips, first_item(ds, DCM_RealWorldValueMappingSequence), &base);

    DcmItem *shared = first_item(ds, DCM_SharedFunctionalGroupsSequence);
    DcmSequenceOfItems *perframe = nullptr;
    ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, perframe);
    f.enhanced = perframe != nullptr;
    if (perframe && perframe->card() < (unsigned long)f.n_frames)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: %lu per-frame functional groups for %d frames", path,
                        perframe->card(), f.n_frames);

    f.path = strdup(path);
    if (!f.path) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    if (s->n_files == s->cap_files) {
        int cap = s->cap_files ? 2 * s->cap_files : 64;
        void *p = realloc(s->files, (size_t)cap * sizeof *s->files);
        if (!p) {
            free(f.path);
            return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
        }
        s->files = (dcm_file *)p;
        s->cap_files = cap;
    }
    const int fi = s->n_files;
    const int first_frame = s->n_frames;
    for (int k = 0; k < f.n_frames; k++) {
        dcm_frame fr = base;
        fr.file = fi;
        fr.frame = k;
        if (f.enhanced) {
            functional_groups(shared, &fr, philips);
            DcmItem *pf = perframe->getItem((unsigned long)k);
            functional_groups(pf, &fr, philips);
        }
        if (scan_add_frame(s, &fr)) {
            s->n_frames = first_frame;
            free(f.path);
            return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    s->files[s->n_files++] = f;
    if (f.mosaic_images > 0 && mosaic_expand(s, fi, first_frame)) {
        // The file is kept (it is referenced by index) but its frames are dropped.
        s->n_frames = first_frame;
        return aac_fail(err, AAC_ERR_FORMAT, "%s: Siemens mosaic of %d images does not fit %d x %d",
                        path, f.mosaic_images, f.cols, f.rows);
    }
    return AAC_OK;
}

}  // namespace

extern "C" aac_status dcm_read_header(aac_scan *s, const char *path, aac_error *err) {
    dcm_init();
    // DCMTK 3.6.7 throws from its parser on some corrupt values (DcmByteString::verify erasing
    // past the end of an over-long multi-valued string): a corrupt file, not a crash.
    try {
        return read_header(s, path, err);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_FORMAT, "%s: DICOM file cannot be parsed, truncated or corrupt (%s)", path,
                        e.what());
    }
}
