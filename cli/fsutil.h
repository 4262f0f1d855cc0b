/* fsutil.h - small filesystem helpers of the command line (folders, atomic text files). */
#ifndef AAC_FSUTIL_H
#define AAC_FSUTIL_H
#include <stddef.h>

/* mkdir -p; 0 on success, -1 with errno set. */
int fs_mkdirs(const char *path);
/* rm -rf of a folder we created (does not follow symbolic links); 0 on success. */
int fs_remove_tree(const char *path);
/* Writes text to path through path.tmp.<pid> + fsync + rename; 0 on success. */
int fs_write_atomic(const char *path, const char *text, size_t len);
/* Copies src into dst (cap bytes) keeping [A-Za-z0-9._-], other bytes become '_'; never
 * empty, never "." or "..": safe as one path component. */
void fs_sanitize(const char *src, char *dst, size_t cap);
int fs_exists(const char *path);
#endif
