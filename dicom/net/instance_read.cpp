// instance_read.cpp - the identifying attributes of one received DICOM file (DCMTK; values of
// large elements stay on disk: pixel data is never loaded here).
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <cstring>

extern "C" {
#include "error.h"
}
#include "ingest.h"
#include "net_internal.h"

namespace {

void get(DcmItem *it, const DcmTagKey &tag, char *dst, size_t cap) {
    OFString v;
    dst[0] = '\0';
    if (!it || it->findAndGetOFString(tag, v).bad()) return;
    // Trailing spaces and the NUL padding of UIDs are not part of the value.
    size_t n = v.length();
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\0')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, v.c_str(), n);
    dst[n] = '\0';
}

}  // namespace

extern "C" aac_status net_instance_read(const char *path, net_instance *out, aac_error *err) {
    dcm_init();
    memset(out, 0, sizeof *out);
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
    if (c.bad()) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot be parsed: %s", path, c.text());
    DcmDataset *ds = ff.getDataset();
    get(ff.getMetaInfo(), DCM_TransferSyntaxUID, out->ts_uid, sizeof out->ts_uid);
    if (!out->ts_uid[0]) {
        const char *x = DcmXfer(ds->getOriginalXfer()).getXferID();
        snprintf(out->ts_uid, sizeof out->ts_uid, "%s", x ? x : "");
    }
    get(ds, DCM_SOPClassUID, out->sop_class, sizeof out->sop_class);
    get(ds, DCM_SOPInstanceUID, out->sop_uid, sizeof out->sop_uid);
    get(ds, DCM_StudyInstanceUID, out->study_uid, sizeof out->study_uid);
    get(ds, DCM_SeriesInstanceUID, out->series_uid, sizeof out->series_uid);
    get(ds, DCM_PatientID, out->patient_id, sizeof out->patient_id);
    const unsigned long n = ds->card();
    DcmElement *last = n ? ds->getElement(n - 1) : nullptr;
    if (last && last->getTag() == DCM_DataSetTrailingPadding) {
        const bool implicit = DcmXfer(ds->getOriginalXfer()).isImplicitVR();
        out->trailing_padding = (int64_t)last->getLength() + (implicit ? 8 : 12);
    }
    return AAC_OK;
}
