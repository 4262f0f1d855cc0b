/* fuzz_nifti.c - libFuzzer target for NIfTI-1 input (volume_check.c, then ITK's NIfTI reader):
 * the input is a .nii file, or a .nii.gz when it starts with the gzip magic. */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include "fuzz_volume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const int gz = size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
    return fz_volume_input(gz ? ".nii.gz" : ".nii", data, size);
}
