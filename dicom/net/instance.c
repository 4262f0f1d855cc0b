/* instance.c - a received instance checked and put in its place: the UIDs that become file
 * names validated, the image read by the ingestion's own header check (what it cannot score
 * is refused at the door, with the reason), then temp + fsync + rename under
 * root/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"
#include "net_internal.h"

aac_status net_instance_check(const char *path, const char *expect_sop, int other_classes, net_instance *in,
                              aac_error *err) {
    aac_status s = net_instance_read(path, in, err);
    if (s) return s;
    static const struct {
        const char *what;
        size_t off;
    } uids[] = {{"SOP Instance UID", offsetof(net_instance, sop_uid)},
                {"Study Instance UID", offsetof(net_instance, study_uid)},
                {"Series Instance UID", offsetof(net_instance, series_uid)}};
    for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++) {
        const char *v = (const char *)in + uids[i].off;
        if (!aac_net_uid_valid(v))
            return aac_fail(err, AAC_ERR_FORMAT, "%s '%.64s' is %s", uids[i].what, v,
                            v[0] ? "not a valid UID" : "missing");
    }
    if (expect_sop && strcmp(expect_sop, in->sop_uid))
        return aac_fail(err, AAC_ERR_FORMAT, "the dataset's SOP Instance UID %s is not the one the C-STORE named (%s)",
                        in->sop_uid, expect_sop);
    if (other_classes && !net_is_image_sop_class(in->sop_class)) return AAC_OK;
    /* The ingestion decides whether it can read the image (same rules as `aaclip score`). */
    aac_scan *scan = NULL;
    s = aac_scan_paths(&path, 1, &scan, err);
    if (s) return s;
    if (aac_scan_series_count(scan) != 1) {
        const char *why = aac_scan_note_count(scan) ? aac_scan_note(scan, 0, NULL) : "not an image series";
        /* notes start with the path: keep the reason only */
        const size_t n = strlen(path);
        if (!strncmp(why, path, n) && why[n] == ':') why += n + 1 + (why[n + 1] == ' ');
        aac_fail(err, AAC_ERR_FORMAT, "%s", why);
        aac_scan_free(scan);
        return AAC_ERR_FORMAT;
    }
    aac_scan_free(scan);
    return AAC_OK;
}

void net_instance_path(const char *root, const net_instance *in, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s/%s/%s.dcm", root, in->study_uid, in->series_uid, in->sop_uid);
}

/* mkdir that makes a new folder durable in its parent. */
static aac_status make_dir(const char *dir, const char *parent, aac_error *err) {
    if (mkdir(dir, 0755) == 0) {
        fs_sync_dir(parent);
        return AAC_OK;
    }
    if (errno == EEXIST) return AAC_OK;
    return aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
}

aac_status net_instance_commit(const char *tmp, const char *root, const net_instance *in, int sync_folder,
                               int flushed, aac_error *err) {
    char study[4200], series[4300], final[4400];
    snprintf(study, sizeof study, "%s/%s", root, in->study_uid);
    snprintf(series, sizeof series, "%s/%s", study, in->series_uid);
    net_instance_path(root, in, final, sizeof final);
    aac_status s = make_dir(study, root, err);
    if (!s) s = make_dir(series, study, err);
    if (s) {
        fs_discard(tmp);
        return s;
    }
    if (sync_folder) return fs_commit(tmp, final, err);
    return flushed ? fs_commit_flushed(tmp, final, err) : fs_commit_nosync(tmp, final, err);
}
