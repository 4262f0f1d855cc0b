/* fsutil.h - files and paths, for every layer of the project (internal: shared through the
 * aaclip_internal target, not installed). One place for the temp-file + fsync + rename dance,
 * so nothing half-written ever carries a final name. */
#ifndef AAC_FSUTIL_H
#define AAC_FSUTIL_H
#include <stddef.h>

#include "aaclip.h"

#ifdef __cplusplus
extern "C" {
#endif

int fs_exists(const char *path);
int fs_is_dir(const char *path);
/* 1 when s ends in suffix (case-sensitive). */
int fs_ends_with(const char *s, const char *suffix);
/* "dir/name", malloc'ed; NULL when out of memory. */
char *fs_join(const char *dir, const char *name);
/* mkdir -p; 0 on success, -1 with errno set. */
int fs_mkdirs(const char *path);
/* rm -rf of a folder we created (does not follow symbolic links); 0 on success. */
int fs_remove_tree(const char *path);
/* Copies src into dst (cap bytes) keeping [A-Za-z0-9._-], other bytes become '_'; never
 * empty, never "." or "..": safe as one path component. */
void fs_sanitize(const char *src, char *dst, size_t cap);

/* ---------------------------------------------------------------- atomic files */
/* Creates an empty temporary file beside `final` (same folder, hidden name, same whole
 * extension: ITK picks format and compression by name); tmp receives its path. */
aac_status fs_tmp_path(const char *final, char *tmp, size_t cap, aac_error *err);
/* Flushes tmp to disk and renames it to final (replacing it), then syncs the folder; removes
 * tmp on failure. */
aac_status fs_commit(const char *tmp, const char *final, aac_error *err);
void fs_discard(const char *tmp);
/* fs_commit without the sync of final's folder: the file's content is on disk, the rename
 * becomes durable at the file system's next commit (or fs_sync_dir). Only for callers that
 * find and finish a complete tmp file after a crash (the DICOM node's receive folder). */
aac_status fs_commit_nosync(const char *tmp, const char *final, aac_error *err);
/* fs_commit_nosync for a tmp file the caller has already fsynced: only the rename. */
aac_status fs_commit_flushed(const char *tmp, const char *final, aac_error *err);
/* data -> path through fs_tmp_path + fs_commit. */
aac_status fs_write_atomic(const char *path, const void *data, size_t len, aac_error *err);
/* Puts the finished folder tmp_dir in place of final_dir (moving an existing one aside first
 * and removing it after), then syncs the parent folder: readers see the old folder or the new
 * one, never a mixture. */
aac_status fs_replace_dir(const char *tmp_dir, const char *final_dir, aac_error *err);
/* fsync of a folder (makes renames inside it durable); 0 on success. */
int fs_sync_dir(const char *dir);
/* Starts writing the dirty pages of fd's file to disk and returns at once (Linux
 * sync_file_range; nothing elsewhere): a later fsync then waits only for what was written
 * after. For files received piece by piece, whose flush would otherwise all wait at the end. */
void fs_start_writeback(int fd);

#ifdef __cplusplus
}
#endif
#endif
