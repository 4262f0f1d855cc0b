// gdcm_pixels.cpp - JPEG 2000 through the GDCM that ITK's GDCM image IO is built on.
// Free DCMTK has no JPEG 2000 decoder. We call gdcm::ImageReader directly rather than
// itk::GDCMImageIO because the latter applies rescale slope/intercept (frame 1's only) and we
// want stored values, so that one rescale path (per frame, Philips scaling) serves every codec.
#include <gdcmImage.h>
#include <gdcmImageReader.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include "ingest.h"

extern "C" {
#include "error.h"
}

extern "C" aac_status gdcm_read_pixels(const dcm_file *f, int32_t *out, aac_error *err) {
    try {
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
