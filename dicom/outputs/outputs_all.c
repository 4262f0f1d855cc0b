/* outputs_all.c - every result of a scored volume into one folder: images, scene and montage
 * for any source; SEG, Parametric Map and SR next to a DICOM source (for volume files the
 * caller gets a note saying why they are absent). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "outputs.h"

aac_status aac_write_outputs(const aac_results *r, const aac_output_params *p, const char *dir, char *note,
                             size_t note_cap, aac_error *err) {
    if (note && note_cap) note[0] = '\0';
    aac_status st = out_check(r, 0, "outputs", err);
    if (st != AAC_OK) return st;
    if (!dir) return aac_fail(err, AAC_ERR_ARG, "aac_write_outputs: no folder");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    char path[4096], path2[4096];
    if ((st = aac_write_images(r, dir, err)) != AAC_OK || (st = aac_write_scene(r, dir, err)) != AAC_OK)
        return st;
    snprintf(path, sizeof path, "%s/montage.png", dir);
    if ((st = aac_write_png_montage(r, p, path, err)) != AAC_OK) return st;
    if (!r->source->slice_paths) {
        if (note && note_cap)
            snprintf(note, note_cap,
                     "%s is a volume file: DICOM SEG, Parametric Map and SR need a DICOM input (images, scene "
                     "and PNG montage written)",
                     r->source->source);
        return AAC_OK;
    }
    snprintf(path, sizeof path, "%s/seg_probability.dcm", dir);
    snprintf(path2, sizeof path2, "%s/seg_binary.dcm", dir);
    if ((st = aac_write_seg(r, p, path, path2, err)) != AAC_OK) return st;
    snprintf(path, sizeof path, "%s/pmap.dcm", dir);
    if ((st = aac_write_pmap(r, p, path, err)) != AAC_OK) return st;
    snprintf(path, sizeof path, "%s/sr.dcm", dir);
    return aac_write_sr(r, p, path2, path, err);
}
