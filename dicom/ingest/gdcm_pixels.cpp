// gdcm_pixels.cpp - JPEG 2000 through the GDCM that ITK's GDCM image IO is built on, after the
// codestreams' own headers were checked against the DICOM header.
// Free DCMTK has no JPEG 2000 decoder. We call gdcm::ImageReader directly rather than
// itk::GDCMImageIO because the latter applies rescale slope/intercept (frame 1's only) and we
// want stored values, so that one rescale path (per frame, Philips scaling) serves every codec.
#include <dcmtk/config/osconfig.h>
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
aac_status check_codestreams(const dcm_file *f, aac_error *err) {
    dcm_init();
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

}  // namespace

extern "C" aac_status gdcm_read_pixels(const dcm_file *f, int32_t *out, aac_error *err) {
    try {
        aac_status st = check_codestreams(f, err);
        if (st != AAC_OK) return st;
        gdcm::ImageReader r;
        std::istringstream gz_in;  // a gzip-compressed file is read from memory
        if (f->gzipped) {
            unsigned char *data = nullptr;
            size_t len = 0;
            aac_status st = gz_read_all(f->path, &data, &len, err);
            if (st != AAC_OK) return st;
            gz_in.str(std::string(reinterpret_cast<char *>(data), len));
            free(data);
            r.SetStream(gz_in);
        } else {
            r.SetFileName(f->path);
        }
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
