/* zip_reader.h - read-only access to zip members through libzip (internal).
 *
 * zr_open reads the central directory once and validates every entry before anything is
 * read: the name must be relative with no ".." component (zip-slip), names must be unique,
 * the method must be stored or deflate, not encrypted, and the declared size at most
 * max_member bytes. Members are then read whole into memory, one at a time, with the size
 * checked against the directory and the CRC checked by libzip at the end of the member.
 * Nothing is ever written to the filesystem. */
#ifndef AAC_ZIP_READER_H
#define AAC_ZIP_READER_H
#include <stddef.h>
#include <stdint.h>

#include "aaclip.h"

typedef struct zr_archive zr_archive;

/* max_member: the largest uncompressed size any entry may declare. */
aac_status zr_open(const char *path, uint64_t max_member, zr_archive **out, aac_error *err);
void zr_close(zr_archive *z);
const char *zr_path(const zr_archive *z);
size_t zr_count(const zr_archive *z);
/* Raw member name of entry i (directory order). */
const char *zr_name(const zr_archive *z, size_t i);
/* Declared uncompressed size of entry i. */
uint64_t zr_size(const zr_archive *z, size_t i);
/* Index of the member called `name`, or -1. */
int64_t zr_find(const zr_archive *z, const char *name);
/* Reads member i fully into a malloc'ed buffer (*data, *len; the caller frees). Fails when the
 * declared size exceeds max_bytes, or when the stored data does not match the directory
 * (short, long, CRC). A 0-byte member gives a non-NULL 1-byte allocation and *len = 0. */
aac_status zr_read(const zr_archive *z, size_t i, size_t max_bytes, void **data, size_t *len,
                   aac_error *err);
#endif
