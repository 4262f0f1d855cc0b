// dcm_pixels.cpp - DCMTK wrapper: decode every frame of one file into stored values; for JPEG
// 2000, the encapsulated fragments handed to OpenJPEG (j2k_decode.c).
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dctk.h>

#include <cstring>
#include <vector>

#include "dcm_load.h"
#include "ingest.h"

extern "C" {
#include "error.h"
}


extern "C" int ts_is_jpeg2000(const char *uid) {
    return !strcmp(uid, "1.2.840.10008.1.2.4.90") || !strcmp(uid, "1.2.840.10008.1.2.4.91") ||
           !strcmp(uid, "1.2.840.10008.1.2.4.201") || !strcmp(uid, "1.2.840.10008.1.2.4.202") ||
           !strcmp(uid, "1.2.840.10008.1.2.4.203");
}

namespace {

aac_status read_pixels(const dcm_file *f, int32_t *out, int *y_grey, aac_error *err) {
    DcmFileFormat ff;
    OFCondition c = dcm_load_file(ff, f->path, DCM_MaxReadLength, nullptr);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot read (%s)", f->path, c.text());
    DcmDataset *ds = ff.getDataset();
    DcmXfer xfer(ds->getOriginalXfer());
    if (xfer.isEncapsulated()) {
        c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: transfer syntax %s (%s) cannot be decoded%s%s",
                            f->path, f->ts_uid, aac_transfer_syntax_name(f->ts_uid), c.bad() ? ": " : "",
                            c.bad() ? c.text() : "");
    }
    DcmElement *px = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, px).bad() || !px)
        return aac_fail(err, AAC_ERR_MISSING, "%s: pixel data missing", f->path);
    const size_t n = (size_t)f->n_frames * f->rows * f->cols * f->spp;
    size_t bytes = n * (size_t)(f->bits_alloc / 8);
    if (f->ybr == 2) bytes = bytes / 3 * 2;  // native YBR_FULL_422: Y1 Y2 Cb Cr per two pixels
    // The decoder may rewrite photometric interpretation and planar configuration (JPEG YBR to
    // RGB); what is left in YBR (native, RLE) gives its grey by Y alone.
    Uint16 planar = (Uint16)f->planar;
    ds->findAndGetUint16(DCM_PlanarConfiguration, planar);
    OFString pi;
    if (f->spp == 3 && y_grey && ds->findAndGetOFString(DCM_PhotometricInterpretation, pi).good())
        *y_grey = pi.compare(0, 4, "YBR_") == 0;
    const void *raw = nullptr;
    size_t have = 0;
    Uint8 *p8 = nullptr;
    Uint16 *p16 = nullptr;
    // OB/OW choice depends on the transfer syntax and the writer; values are in host order
    // (DCMTK swaps big endian), which for 8-bit OB is byte order and for OW is 16-bit words.
    if (px->getVR() == EVR_OW && px->getUint16Array(p16).good() && p16) {
        raw = p16;
        have = px->getLength();
    } else if (px->getUint8Array(p8).good() && p8) {
        raw = p8;
        have = px->getLength();
    } else {
        c = px->getUint16Array(p16);
        if (c.good() && p16) {
            raw = p16;
            have = px->getLength();
        } else {
            return aac_fail(err, AAC_ERR_FORMAT, "%s: pixel data unreadable (%s)", f->path,
                            c.bad() ? c.text() : "no value");
        }
    }
    if (have < bytes)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: pixel data holds %zu bytes, %zu expected for %d x %d x %d "
                        "frame(s), %d bits allocated, %d sample(s) per pixel, %s (truncated?)", f->path, have, bytes,
                        f->cols, f->rows, f->n_frames, f->bits_alloc, f->spp,
                        f->photometric[0] ? f->photometric : "MONOCHROME2");
    if (samples_unpack(raw, n, f, planar, f->n_frames, out))
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
    return AAC_OK;
}

// JPEG 2000: the pixel data's fragments as DCMTK holds them (item 0, the offset table, and
// empty items left out), decoded in C.
aac_status read_j2k(const dcm_file *f, int32_t *out, aac_error *err) {
    DcmFileFormat ff;
    OFCondition c = dcm_load_file(ff, f->path, DCM_MaxReadLength, nullptr);  // gzip-aware
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot read (%s)", f->path, c.text());
    DcmDataset *ds = ff.getDataset();
    DcmElement *el = nullptr;
    DcmPixelSequence *seq = nullptr;
    const DcmRepresentationParameter *rp = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el || el->ident() != EVR_PixelData ||
        OFstatic_cast(DcmPixelData *, el)->getEncapsulatedRepresentation(ds->getOriginalXfer(), rp, seq).bad() || !seq)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 transfer syntax without encapsulated pixel data", f->path);
    std::vector<j2k_fragment> frags;
    for (unsigned long i = 1; i < seq->card(); i++) {
        DcmPixelItem *item = nullptr;
        Uint8 *data = nullptr;
        if (seq->getItem(item, i).bad() || !item || item->getLength() == 0 || item->getUint8Array(data).bad() || !data)
            continue;
        frags.push_back(j2k_fragment{data, (size_t)item->getLength()});
    }
    if (frags.size() > (size_t)INT32_MAX)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 pixel data of too many fragments", f->path);
    return j2k_decode_frames(f, frags.data(), (int)frags.size(), out, err);
}

}  // namespace

extern "C" aac_status dcm_read_pixels(const dcm_file *f, int32_t *out, int *y_grey, aac_error *err) {
    if (y_grey) *y_grey = 0;
    dcm_init();
    // DCMTK 3.6.7's parser throws on some corrupt values (see dcm_header.cpp).
    try {
        if (ts_is_jpeg2000(f->ts_uid)) {
            // YBR_RCT / YBR_ICT: the codestream's colour transform, undone by OpenJPEG (RGB out);
            // YBR_FULL: stored as YCbCr without one, so the first component is the luminance.
            if (y_grey) *y_grey = f->spp == 3 && !strncmp(f->photometric, "YBR_FULL", 8);
            return read_j2k(f, out, err);
        }
        return read_pixels(f, out, y_grey, err);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot read (%s)", f->path, e.what());
    }
}
