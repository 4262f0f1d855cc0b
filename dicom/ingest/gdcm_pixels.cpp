// gdcm_pixels.cpp - JPEG 2000 through the GDCM that ITK's GDCM image IO is built on, after the
// codestreams' own headers were checked against the DICOM header.
// Free DCMTK has no JPEG 2000 decoder. We call gdcm::ImageReader directly rather than
// itk::GDCMImageIO because the latter applies rescale slope/intercept (frame 1's only) and we
// want stored values, so that one rescale path (per frame, Philips scaling) serves every codec.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dctk.h>
#include <gdcmImage.h>
#include <gdcmImageReader.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include "dcm_load.h"
#include "ingest.h"

extern "C" {
#include "error.h"
}

namespace {

// Every codestream's own header (j2k.c) against the DICOM header, before GDCM decodes anything:
// GDCM sizes its buffers from Rows, Columns, Samples per Pixel and Bits Allocated and copies
// what the codestream decodes to, so a disagreement corrupts the heap inside the decoder.
aac_status check_codestreams(const dcm_file *f, DcmDataset *ds, aac_error *err) {
    DcmElement *el = nullptr;
    DcmPixelSequence *seq = nullptr;
    const DcmRepresentationParameter *rp = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el || el->ident() != EVR_PixelData ||
        OFstatic_cast(DcmPixelData *, el)->getEncapsulatedRepresentation(ds->getOriginalXfer(), rp, seq).bad() || !seq)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 transfer syntax without encapsulated pixel data", f->path);
    int frames = 0;
    for (unsigned long i = 1; i < seq->card(); i++) {  // item 0 is the offset table
        DcmPixelItem *item = nullptr;
        Uint8 *data = nullptr;
        if (seq->getItem(item, i).bad() || !item || item->getUint8Array(data).bad() || !data) continue;
        j2k_info info;
        const int r = j2k_read_info(data, item->getLength(), &info);
        if (r == -1) continue;  // a later fragment of the frame before
        if (r != 0)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 codestream %d: malformed or truncated image header",
                            f->path, frames + 1);
        frames++;
        if (info.width != (uint32_t)f->cols || info.height != (uint32_t)f->rows || info.components != f->spp ||
            info.max_depth > f->bits_alloc || info.subsampled)
            return aac_fail(err, AAC_ERR_FORMAT,
                            "%s: JPEG 2000 codestream %d is %u x %u, %d component(s) of up to %d bits%s, but the "
                            "header says %d x %d, %d sample(s) per pixel, %d bits allocated",
                            f->path, frames, info.width, info.height, info.components, info.max_depth,
                            info.subsampled ? " (subsampled)" : "", f->cols, f->rows, f->spp, f->bits_alloc);
    }
    if (frames != f->n_frames)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 pixel data holds %d codestream(s) for %d frame(s)", f->path,
                        frames, f->n_frames);
    return AAC_OK;
}

// The file as GDCM is given it: the image pixel module written afresh from the values our own
// header reading checked (standard VRs), and the encapsulated pixel data. GDCM interprets every
// other module while reading and asserts (aborting the process) on malformed values: spacing
// (ImageHelper::GetSpacingValue) and a Samples per Pixel of another VR (Attribute::
// SetFromDataElement), both found by fuzz_dicom_file. Geometry comes from our own reading.
aac_status pixel_module_stream(const dcm_file *f, DcmFileFormat &ff, std::string &out, aac_error *err) {
    DcmDataset *ds = ff.getDataset();
    const E_TransferSyntax xfer = ds->getOriginalXfer();
    DcmFileFormat reduced;
    DcmDataset *rd = reduced.getDataset();
    const char *sop_class = dcmIsImageStorageSOPClassUID(f->sop_class) ? f->sop_class : UID_SecondaryCaptureImageStorage;
    OFCondition c = rd->putAndInsertString(DCM_SOPClassUID, sop_class);
    if (c.good()) c = rd->putAndInsertString(DCM_SOPInstanceUID, f->sop_uid[0] ? f->sop_uid : "1.2.3");
    if (c.good()) c = rd->putAndInsertUint16(DCM_SamplesPerPixel, (Uint16)f->spp);
    if (c.good()) c = rd->putAndInsertString(DCM_PhotometricInterpretation, f->photometric[0] ? f->photometric : "MONOCHROME2");
    if (c.good() && f->spp > 1) c = rd->putAndInsertUint16(DCM_PlanarConfiguration, (Uint16)f->planar);
    if (c.good() && f->n_frames > 1) {
        char frames[16];
        snprintf(frames, sizeof frames, "%d", f->n_frames);
        c = rd->putAndInsertString(DCM_NumberOfFrames, frames);
    }
    if (c.good()) c = rd->putAndInsertUint16(DCM_Rows, (Uint16)f->rows);
    if (c.good()) c = rd->putAndInsertUint16(DCM_Columns, (Uint16)f->cols);
    if (c.good()) c = rd->putAndInsertUint16(DCM_BitsAllocated, (Uint16)f->bits_alloc);
    if (c.good()) c = rd->putAndInsertUint16(DCM_BitsStored, (Uint16)f->bits_stored);
    if (c.good()) c = rd->putAndInsertUint16(DCM_HighBit, (Uint16)f->high_bit);
    if (c.good()) c = rd->putAndInsertUint16(DCM_PixelRepresentation, (Uint16)f->pixel_rep);
    DcmElement *px = nullptr;
    if (c.good() && (ds->findAndGetElement(DCM_PixelData, px).bad() || !px)) c = EC_TagNotFound;
    DcmElement *copy = c.good() ? OFstatic_cast(DcmElement *, px->clone()) : nullptr;
    if (c.good() && (!copy || (c = rd->insert(copy, true)).bad())) delete copy;
    if (c.good()) c = reduced.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID, f->ts_uid);
    if (c.good()) c = reduced.validateMetaInfo(xfer);
    const Uint32 len = c.good() ? reduced.calcElementLength(xfer, EET_ExplicitLength) : 0;
    if (c.bad() || len == DCM_UndefinedLength)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot prepare the pixel data for the decoder (%s)", f->path,
                        c.bad() ? c.text() : "length");
    out.assign((size_t)len + 1024, '\0');  // slack for the preamble and the meta header's own values
    DcmOutputBufferStream os(&out[0], out.size());
    reduced.transferInit();
    c = reduced.write(os, xfer, EET_ExplicitLength, nullptr);
    reduced.transferEnd();
    if (c.bad())
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot prepare the pixel data for the decoder (%s)", f->path,
                        c.text());
    void *buf = nullptr;
    offile_off_t n = 0;
    os.flushBuffer(buf, n);
    out.resize((size_t)n);
    return AAC_OK;
}

}  // namespace

extern "C" aac_status gdcm_read_pixels(const dcm_file *f, int32_t *out, aac_error *err) {
    try {
        dcm_init();
        DcmFileFormat ff;
        OFCondition c = dcm_load_file(ff, f->path, DCM_MaxReadLength, nullptr);  // gzip-aware
        if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot read (%s)", f->path, c.text());
        aac_status st = check_codestreams(f, ff.getDataset(), err);
        if (st != AAC_OK) return st;
        std::string stream;
        if ((st = pixel_module_stream(f, ff, stream, err)) != AAC_OK) return st;
        ff.clear();  // the copy is all GDCM sees
        std::istringstream in(stream);
        gdcm::ImageReader r;
        r.SetStream(in);
        if (!r.Read())
            return aac_fail(err, AAC_ERR_FORMAT, "%s: transfer syntax %s (%s): GDCM cannot read the file",
                            f->path, f->ts_uid, aac_transfer_syntax_name(f->ts_uid));
        const gdcm::Image &img = r.GetImage();
        const gdcm::PixelFormat pf = img.GetPixelFormat();
        const unsigned int *d = img.GetDimensions();
        const int frames = img.GetNumberOfDimensions() > 2 ? (int)d[2] : 1;
        if ((int)d[0] != f->cols || (int)d[1] != f->rows || frames != f->n_frames ||
            pf.GetBitsAllocated() != f->bits_alloc || pf.GetSamplesPerPixel() != f->spp)
            return aac_fail(err, AAC_ERR_FORMAT,
                            "%s: decoded JPEG 2000 image (%u x %u x %d, %u bits) does not match the header",
                            f->path, d[0], d[1], frames, (unsigned)pf.GetBitsAllocated());
        std::vector<char> buf(img.GetBufferLength());
        if (!img.GetBuffer(buf.data()))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: transfer syntax %s (%s): GDCM failed to decode",
                            f->path, f->ts_uid, aac_transfer_syntax_name(f->ts_uid));
        const size_t n = (size_t)f->n_frames * f->rows * f->cols * f->spp;
        if (buf.size() < n * (size_t)(f->bits_alloc / 8))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 stream is shorter than the image", f->path);
        // GDCM hands back the codestream's samples; BitsStored/HighBit/sign as the header says.
        if (samples_unpack(buf.data(), n, f, (int)img.GetPlanarConfiguration(), f->n_frames, out))
            return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
        return AAC_OK;
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_FORMAT, "%s: JPEG 2000 decode failed: %s", f->path, e.what());
    }
}
