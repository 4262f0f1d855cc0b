// dcm_init.cpp - the process-wide DCMTK set-up, done once.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <mutex>

#include "ingest.h"

namespace {
std::once_flag g_once;
}

// DCMTK keeps its decoders in one process-wide registry, and registering twice adds
// duplicates; std::call_once makes the first scan or decode register RLE, JPEG and JPEG-LS
// exactly once even when several threads load series at the same time. They stay registered
// for the life of the process (unregistering at exit could race with a late decode).
// DCMTK's logger (also process-wide) would print parser complaints about every hostile file
// to stderr; we report problems through aac_error and notes instead, so it is quietened.
extern "C" void dcm_init(void) {
    std::call_once(g_once, [] {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        DcmRLEDecoderRegistration::registerCodecs();
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
    });
}
