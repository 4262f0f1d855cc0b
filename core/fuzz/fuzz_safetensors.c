/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: the input is written to
 * a memfd, opened with st_open, and every tensor is read (as float32 where it is a float
 * type) so that any offset or size the validation let through is touched under ASan. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "safetensors.h"

static int mem_fd = -1; /* one memfd reused for every input (fuzzer-only state) */
static char mem_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (mem_fd < 0) {
        mem_fd = memfd_create("aac_fuzz_st", 0);
        if (mem_fd < 0) abort();
        snprintf(mem_path, sizeof mem_path, "/proc/self/fd/%d", mem_fd);
    }
    if (ftruncate(mem_fd, 0) != 0 || pwrite(mem_fd, data, size, 0) != (ssize_t)size) abort();
    st_file *f = NULL;
    aac_error err = {0};
    if (st_open(mem_path, &f, &err) != AAC_OK) {
        if (f != NULL || err.message[0] == '\0') abort();
        return 0;
    }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        if (st_find(f, t->name) != t) abort();
        if (t->numel > 0 && t->numel <= (1 << 20) &&
            (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64)) {
            const float *out;
            float *owned = NULL;
            if (st_get_f32(f, t->name, t->ndim, t->shape, &out, &owned, &err) == AAC_OK) {
                for (int64_t k = 0; k < t->numel; k++) sink ^= ((const uint8_t *)&out[k])[0];
                free(owned);
            }
        }
    }
    (void)st_metadata(f, "config");
    (void)sink;
    st_close(f);
    return 0;
}
