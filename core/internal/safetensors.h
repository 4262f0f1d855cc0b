/* safetensors.h - reading and writing the safetensors format (internal).
 *
 * Reader: the file is mmap'ed; the JSON header is parsed with jansson and every entry is
 * validated (dtype known, shape product * dtype size == byte length, offsets inside the data
 * area, no two tensors overlapping). Any problem fails st_open with a message naming the file
 * and the tensor. Writer: tensors are copied in, the file is written to a temporary name in
 * the same folder and renamed, so a half-written file never carries the final name. */
#ifndef AAC_SAFETENSORS_H
#define AAC_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "aaclip.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_U8, ST_I8, ST_I16, ST_I32, ST_I64, ST_BOOL
} st_dtype;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;   /* inside the mapping; not necessarily aligned */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);

aac_status st_open(const char *path, st_file **out, aac_error *err);
void st_close(st_file *f);
const char *st_path(const st_file *f);
size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
/* String value of __metadata__[key], NULL if absent. */
const char *st_metadata(const st_file *f, const char *key);
/* Gives the pages wholly inside [p, p + bytes) back to the OS when they belong to f's mapping
 * (a tensor used through a copy made elsewhere); touching them again reads them from the file.
 * Does nothing for memory outside the mapping. */
void st_release_pages(const st_file *f, const void *p, size_t bytes);

/* Tensor `name` as float32, converted from F32/F16/BF16/F64. If shape != NULL the tensor must
 * have exactly that shape (ndim dims). *out points into the mapping when the stored data is
 * F32 and 4-byte aligned (and *owned = NULL); otherwise a malloc'ed copy is returned and also
 * stored in *owned for the caller to free. */
aac_status st_get_f32(const st_file *f, const char *name, int ndim, const int64_t *shape,
                      const float **out, float **owned, aac_error *err);
/* Copies tensor `name` into dst (numel floats) converting to float32; shape checked as above. */
aac_status st_read_f32(const st_file *f, const char *name, int ndim, const int64_t *shape,
                       float *dst, aac_error *err);

/* IEEE half / bfloat16 to float. */
float st_half_to_float(uint16_t h);
float st_bf16_to_float(uint16_t h);

typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
/* Copies `data` (numel * dtype size bytes). Names must be unique. */
aac_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                         const int64_t *shape, const void *data, aac_error *err);
aac_status st_writer_set_metadata(st_writer *w, const char *key, const char *value, aac_error *err);
/* Atomic: written under a hidden temporary name in the same folder, then renamed (fsutil.h). */
aac_status st_writer_save(const st_writer *w, const char *path, aac_error *err);
void st_writer_free(st_writer *w);
#endif
