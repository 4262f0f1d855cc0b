// dcm_load.cpp - DICOM files into DCMTK, plain or gzip-compressed (see dcm_load.h).
#include "dcm_load.h"

#include <cstdlib>
#include <cstring>

#include "ingest.h"

extern "C" {
#include "error.h"
}

OFCondition dcm_load_file(DcmFileFormat &ff, const char *path, Uint32 max_read_length, bool *gzipped) {
    dcm_init();
    const bool gz = gz_is_path(path) != 0;
    if (gzipped) *gzipped = gz;
    if (!gz) return ff.loadFile(path, EXS_Unknown, EGL_noChange, max_read_length, ERM_autoDetect);
    unsigned char *data = nullptr;
    size_t n = 0;
    aac_error e = {};
    if (gz_read_all(path, &data, &n, &e) != AAC_OK) {
        // the message names the file; the condition carries only the reason
        const char *why = strstr(e.message, ": ");
        return makeOFCondition(OFM_dcmdata, kGzipFailed, OF_error, why ? why + 2 : e.message);
    }
    DcmInputBufferStream in;
    in.setBuffer(data, (offile_off_t)n);
    in.setEos();
    OFCondition c = ff.clear();
    if (c.good()) {
        ff.setReadMode(ERM_autoDetect);
        ff.transferInit();
        c = ff.read(in, EXS_Unknown, EGL_noChange, max_read_length);
        ff.transferEnd();
        // a buffer that ends inside an element: the inflated file is truncated
        if (c == EC_StreamNotifyClient) c = EC_InvalidStream;
    }
    free(data);
    return c;
}
