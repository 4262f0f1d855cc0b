// dcm_load.h - one way into DCMTK for every DICOM file we read (internal, C++ only).
#ifndef AAC_DCM_LOAD_H
#define AAC_DCM_LOAD_H

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dctk.h>

// Loads path into ff like DcmFileFormat::loadFile (any transfer syntax DCMTK reads, deflated
// included; values longer than max_read_length stay on disk until asked for). A gzip-compressed
// file (*.dcm.gz) is inflated in memory first and then read whole (delayed loading needs a
// seekable file); *gzipped (may be NULL) says which. The condition's text says what failed;
// its code is kGzipFailed when the gzip stream itself could not be inflated.
constexpr unsigned short kGzipFailed = 900;
OFCondition dcm_load_file(DcmFileFormat &ff, const char *path, Uint32 max_read_length, bool *gzipped);

#endif
