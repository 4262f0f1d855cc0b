/* volume.c - aac_volume lifetime and small queries. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ingest.h"

void aac_volume_free(aac_volume *v) {
    if (!v) return;
    free(v->voxels);
    free(v->slice_uids);
    free(v->slice_frames);
    if (v->slice_paths) {
        const size_t n = (size_t)v->dim[2] * v->dim[3];
        for (size_t i = 0; i < n; i++) free(v->slice_paths[i]);
    }
    free(v->slice_paths);
    free(v->slice_sop_classes);
    free(v->slice_positions);
    free(v->slice_orientations);
    for (int i = 0; i < v->n_warnings; i++) free(v->warnings[i]);
    free(v->warnings);
    free(v);
}

size_t aac_volume_voxel_count(const aac_volume *v) {
    return v ? (size_t)v->dim[0] * v->dim[1] * v->dim[2] * v->dim[3] : 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

int aac_is_volume_file(const char *path) {
    static const char *const ext[] = {".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"};
    if (!path) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(path, ext[i])) return 1;
    return 0;
}

size_t vol_memory_budget(void) {
    const char *env = getenv("AACLIP_MAX_VOLUME_MB");
    if (env && *env) {
        char *end;
        unsigned long long mb = strtoull(env, &end, 10);
        if (*end == '\0' && mb > 0 && mb < (unsigned long long)(SIZE_MAX >> 20)) return (size_t)mb << 20;
    }
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)8 << 30; /* unknown: 8 GiB */
    const unsigned long long phys = (unsigned long long)pages * (unsigned long long)page;
    return phys / 2 > SIZE_MAX ? SIZE_MAX : (size_t)(phys / 2);
}
