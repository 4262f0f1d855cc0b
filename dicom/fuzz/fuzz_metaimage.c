/* fuzz_metaimage.c - libFuzzer target for MetaImage input (volume_check.c, then ITK's MetaImage
 * reader): the input is an .mha file (LOCAL data, or a detached data file: data.raw, data.zraw). */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include "fuzz_volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fz_volume_input(".mha", data, size); }
