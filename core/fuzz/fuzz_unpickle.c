/* fuzz_unpickle.c - libFuzzer target for the restricted unpickler and the checkpoint reader.
 *
 * Inputs that start like a zip ("PK\3\4") go through ta_open (zip validation, data.pkl,
 * storages); anything else is fed to up_load directly, and when it decodes, it is also wrapped
 * into a minimal checkpoint zip ("archive/data.pkl") so that the name walk and the storage
 * resolution see it too. Files live in a memfd: nothing touches the disk. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zip.h>

#include "torch_archive.h"
#include "unpickle.h"

/* One memfd reused for every input (fuzzer-only state). */
static int mem_fd = -1;
static char mem_path[64];

static const char *to_memfd(const void *data, size_t size) {
    if (mem_fd < 0) {
        mem_fd = memfd_create("aac_fuzz", 0);
        if (mem_fd < 0) abort();
        snprintf(mem_path, sizeof mem_path, "/proc/self/fd/%d", mem_fd);
    }
    if (ftruncate(mem_fd, 0) != 0 || pwrite(mem_fd, data, size, 0) != (ssize_t)size) abort();
    return mem_path;
}

/* Touches every byte of every tensor so ASan sees any bad size. */
static void consume(const ta_archive *a) {
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < ta_count(a); i++) {
        const ta_tensor *t = ta_at(a, i);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        if (ta_find(a, t->name) == NULL) abort();
    }
    (void)ta_scalar(a, "epoch");
    (void)sink;
}

static void open_archive(const void *data, size_t size) {
    ta_limits lim = {.max_depth = 64, .max_objects = 200000, .max_total_bytes = 64u << 20};
    ta_archive *a = NULL;
    aac_error err = {0};
    if (ta_open(to_memfd(data, size), &lim, &a, &err) == AAC_OK) {
        consume(a);
        ta_close(a);
    } else if (a != NULL || err.message[0] == '\0') {
        abort(); /* failures must leave no archive and say why */
    }
}

/* The pickle as "archive/data.pkl" of an in-memory zip, then the bytes of that zip. */
static void wrap_and_open(const uint8_t *pkl, size_t size) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) return;
    zip_source_keep(src);
    zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    zip_source_t *m = z ? zip_source_buffer(z, pkl, size, 0) : NULL;
    if (!z || !m || zip_file_add(z, "archive/data.pkl", m, 0) < 0 || zip_close(z) != 0) {
        if (m && z) zip_source_free(m);
        if (z) zip_discard(z);
        zip_source_free(src);
        zip_error_fini(&ze);
        return;
    }
    zip_stat_t st;
    if (zip_source_stat(src, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && zip_source_open(src) == 0) {
        uint8_t *buf = malloc(st.size ? st.size : 1);
        if (buf && zip_source_read(src, buf, st.size) == (zip_int64_t)st.size)
            open_archive(buf, st.size);
        free(buf);
        zip_source_close(src);
    }
    zip_source_free(src);
    zip_error_fini(&ze);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 4 && memcmp(data, "PK\3\4", 4) == 0) {
        open_archive(data, size);
        return 0;
    }
    up_limits lim = {.max_depth = 64, .max_objects = 200000};
    up_doc *d = NULL;
    aac_error err = {0};
    aac_status st = up_load(data, size, "fuzz", &lim, &d, &err);
    if (st == AAC_OK) {
        if (!up_root(d)) abort();
        up_free(d);
        wrap_and_open(data, size);
    } else if (d != NULL) {
        abort();
    }
    return 0;
}
