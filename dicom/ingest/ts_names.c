/* ts_names.c - transfer syntaxes by name, and which of them this build decodes. */
#include <string.h>

#include "ingest.h"

static const struct {
    const char *uid, *name;
    int decodable;
} k_ts[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian", 1},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", 1},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", 1},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", 1},
    {"1.2.840.10008.1.2.5", "RLE Lossless", 1},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (8-bit)", 1},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (12-bit)", 1},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical", 1},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, First-Order Prediction", 1},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", 1},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", 1},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 (lossless only)", 1},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000", 1},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile @ Main Level", 0},
    {"1.2.840.10008.1.2.4.101", "MPEG2 Main Profile @ High Level", 0},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile", 0},
    {"1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile", 0},
    {"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile", 0},
    {"1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile", 0},
    {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", 0},
    {"1.2.840.10008.1.2.4.112", "JPEG XL", 0},
    /* HTJ2K: OpenJPEG 2.5 decodes it, but DCMTK 3.6.7 does not know these transfer syntaxes. */
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 (lossless only)", 0},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options (lossless only)", 0},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000", 0},
};

const char *aac_transfer_syntax_name(const char *uid) {
    if (!uid) return "";
    for (size_t i = 0; i < sizeof k_ts / sizeof k_ts[0]; i++)
        if (!strcmp(k_ts[i].uid, uid)) return k_ts[i].name;
    return "unknown transfer syntax";
}

int ts_decodable(const char *uid) {
    for (size_t i = 0; i < sizeof k_ts / sizeof k_ts[0]; i++)
        if (!strcmp(k_ts[i].uid, uid)) return k_ts[i].decodable;
    return 0;
}
