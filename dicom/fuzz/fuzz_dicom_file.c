/* fuzz_dicom_file.c - libFuzzer target for one DICOM file through the whole ingestion path:
 * recognition (discover.c), the header wrapper around DCMTK (dcm_header.cpp: classic and
 * enhanced multi-frame functional groups, Philips scaling, Siemens CSA and mosaic), grouping
 * (series.c) and decoding (load.c, samples.c, the DCMTK pixel wrapper, OpenJPEG: j2k_decode.c). Every
 * series that loads must have the size the scan announced, finite geometry and per-slice
 * sources; every refusal must say why. Seeds: classic, enhanced, mosaic and compressed files. */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("in.dcm", data, size);
    const char *paths[] = {path};
    fz_scan_load(paths, 1);
    return 0;
}
