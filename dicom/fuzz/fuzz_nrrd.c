/* fuzz_nrrd.c - libFuzzer target for NRRD input (volume_check.c, then ITK's NRRD reader): the
 * input is an .nrrd file (attached data, or a detached data file: data.raw, data.zraw). */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include "fuzz_volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_volume_input(".nrrd", data, size); }
