// dicomdir.cpp - DCMTK wrapper: the files a DICOMDIR lists. Only the ReferencedFileIDs leave
// here; resolving them on disk (relative folder, case) and scanning them is discover.c's job.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdicdir.h>
#include <dcmtk/dcmdata/dctk.h>

#include <cstring>

#include "ingest.h"

extern "C" {
#include "error.h"
}

namespace {

const char kDicomdirClass[] = "1.2.840.10008.1.3.10";
// PATIENT / STUDY / SERIES / IMAGE is four levels; deeper trees are corrupt, not bigger.
constexpr int kMaxDepth = 16;

// Adds the record's ReferencedFileID; returns false when out of memory. A value that is empty as
// a C string (it starts with a NUL byte: found by fuzz_dicomdir) names no file.
bool add_id(DcmItem *rec, strlist *ids) {
    OFString id;
    if (rec && rec->findAndGetOFStringArray(DCM_ReferencedFileID, id).good() && id.c_str()[0])
        return strlist_addf(ids, 0, "%s", id.c_str()) == 0;
    return true;
}

bool collect(DcmDirectoryRecord *rec, strlist *ids, int depth) {
    if (!rec || depth > kMaxDepth) return true;
    for (unsigned long i = 0; i < rec->cardSub(); i++) {
        DcmDirectoryRecord *sub = rec->getSub(i);
        if (!add_id(sub, ids) || !collect(sub, ids, depth + 1)) return false;
    }
    return true;
}

bool collect_seq(DcmSequenceOfItems *seq, strlist *ids) {
    for (unsigned long i = 0; seq && i < seq->card(); i++)
        if (!add_id(seq->getItem(i), ids)) return false;
    return true;
}

aac_status read_dicomdir(const char *path, strlist *ids, aac_error *err) {
    // DcmDicomDir takes a file it cannot load for a new, empty DICOMDIR and says nothing:
    // parse it first to tell the user why it is not used.
    {
        DcmFileFormat ff;
        OFCondition c = ff.loadFile(path);
        if (c.bad())
            return aac_fail(err, AAC_ERR_FORMAT, "%s: DICOMDIR cannot be parsed (%s)", path, c.text());
        OFString cls;
        ff.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, cls);
        if (cls != kDicomdirClass && !ff.getDataset()->tagExists(DCM_DirectoryRecordSequence))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: named DICOMDIR but holds no directory records", path);
    }
    // Read only: DcmDicomDir writes the file back on destruction only when it was modified,
    // and nothing here modifies it.
    DcmDicomDir dir(path);
    bool ok = collect(&dir.getRootRecord(), ids, 0) && collect_seq(&dir.getMRDRSequence(), ids);
    // Records its offsets do not link into the tree stay in the flat sequence: still files.
    DcmSequenceOfItems *flat = nullptr;
    if (ok && dir.getDirFileFormat().getDataset()->findAndGetSequence(DCM_DirectoryRecordSequence, flat).good())
        ok = collect_seq(flat, ids);
    if (!ok) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading the DICOMDIR", path);
    return AAC_OK;
}

}  // namespace

extern "C" aac_status dcm_read_dicomdir(const char *path, strlist *ids, aac_error *err) {
    dcm_init();
    // DCMTK 3.6.7's parser throws on some corrupt record values (see dcm_header.cpp).
    try {
        return read_dicomdir(path, ids, err);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_FORMAT, "%s: DICOMDIR cannot be parsed (%s)", path, e.what());
    }
}
