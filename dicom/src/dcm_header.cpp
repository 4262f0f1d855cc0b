// dcm_header.cpp - DCMTK wrapper: one file's header attributes into dcm_file / dcm_frame.
// Only attribute extraction lives here; grouping, geometry and decoding decisions are in C.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

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
    }
    // Philips per-frame private item (2005,140F) carries the frame's own scale slope.
    DcmItem *rwv = first_item(g, DCM_RealWorldValueMappingSequence);
    if (DcmItem *pr = first_item(g, DcmTagKey(0x2005, 0x140F))) {
        fr->echo_number = get_int(pr, DCM_EchoNumbers, fr->echo_number);
        philips_scale(pr, philips, rwv, fr);
    }
}

// Siemens private blocks are found by their creator, not by a fixed element number.
int private_block(DcmItem *ds, Uint16 group, const char *creator) {
    for (Uint16 e = 0x10; e <= 0xFF; e++) {
        OFString c;
        if (ds->findAndGetOFString(DcmTagKey(group, e), c).good() && c == creator) return e;
    }
    return -1;
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
            csa_parse(data, len, &f->mosaic_images, &f->has_csa_normal, f->csa_normal);
        }
    }
    if (f->mosaic_images == 0) {  // older files: (0019,xx0A) NumberOfImagesInMosaic
        int m = private_block(ds, 0x0019, "SIEMENS MR HEADER");
        if (m >= 0) f->mosaic_images = get_int(ds, DcmTagKey(0x0019, (Uint16)((m << 8) | 0x0A)), 0);
    }
}

}  // namespace

namespace {

aac_status read_header(aac_scan *s, const char *path, aac_error *err) {
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, kMaxReadLength, ERM_autoDetect);
    if (c.bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: DICOM file cannot be parsed, truncated or corrupt (%s)", path,
                        c.text());
    DcmDataset *ds = ff.getDataset();
    DcmMetaInfo *meta = ff.getMetaInfo();

    dcm_file f;
    memset(&f, 0, sizeof f);
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
    if (strstr(f.photometric, "PALETTE"))
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: PALETTE COLOR images are not supported", path);

    // Pixel data that the file cannot hold means a truncated copy: refuse it here, where the
    // user learns which file, rather than failing the whole series at decode time.
    DcmElement *px = nullptr;
    ds->findAndGetElement(DCM_PixelData, px);
    const size_t expect = (size_t)f.rows * f.cols * f.spp * (f.bits_alloc / 8) * (size_t)f.n_frames;
    DcmXfer xfer(ds->getOriginalXfer());
    f.encapsulated = xfer.isEncapsulated() ? 1 : 0;
    if (!ts_decodable(f.ts_uid))
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: transfer syntax %s (%s) cannot be decoded by this build",
                        path, f.ts_uid, aac_transfer_syntax_name(f.ts_uid));
    if (px && !f.encapsulated) {
        Uint32 len = px->getLength();
        struct stat sb;
        if (len == DCM_UndefinedLength || len < expect)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: pixel data holds %lu bytes, %zu expected", path,
                            (unsigned long)len, expect);
        if (stat(path, &sb) == 0 && (size_t)sb.st_size < expect)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: truncated (%lld bytes, pixel data alone needs %zu)",
                            path, (long long)sb.st_size, expect);
    }

    const bool philips = strncmp(f.manufacturer, "Philips", 7) == 0 || strncmp(f.manufacturer, "PHILIPS", 7) == 0;
    if (strncmp(f.manufacturer, "SIEMENS", 7) == 0 || strncmp(f.manufacturer, "Siemens", 7) == 0)
        if (strstr(f.image_type, "MOSAIC")) siemens_csa(ds, &f);

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
    base.thickness = f.slice_thickness;
    type_key(f.image_type, base.frame_type, sizeof base.frame_type);
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
