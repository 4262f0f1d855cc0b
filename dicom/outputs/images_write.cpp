// images_write.cpp - the anomaly map, the label map and the scored input volume as NIfTI / NRRD
// through ITK, on the input's grid with the geometry the NIfTI converter (itk_io.cpp) writes, so
// they overlay the input in any viewer. The image IO is set on the writer (no object factory).
#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include <cstring>
#include <string>
#include <vector>

#include "ingest.h"
#include "outputs.h"

extern "C" {
#include "error.h"
#include "fsutil.h"
}

namespace {

template <typename T>
aac_status write_image(const aac_volume *v, const T *data, const std::string &path, aac_error *err) {
    using Image = itk::Image<T, 3>;
    char tmp[4096];
    aac_status st = fs_tmp_path(path.c_str(), tmp, sizeof tmp, err);
    if (st != AAC_OK) return st;
    try {
        auto img = Image::New();
        typename Image::RegionType region;
        typename Image::SpacingType spacing;
        typename Image::PointType origin;
        typename Image::DirectionType dir;
        for (unsigned a = 0; a < 3; a++) {
            region.SetSize(a, (itk::SizeValueType)v->dim[a]);
            spacing[a] = v->spacing[a];
            origin[a] = v->origin[a];
            for (unsigned c = 0; c < 3; c++) dir(a, c) = v->direction[a * 3 + c];
        }
        img->SetRegions(region);
        img->SetSpacing(spacing);
        img->SetOrigin(origin);
        img->SetDirection(dir);
        img->Allocate();
        memcpy(img->GetBufferPointer(), data, (size_t)v->dim[0] * v->dim[1] * v->dim[2] * sizeof(T));
        auto w = itk::ImageFileWriter<Image>::New();
        const char *p = path.c_str();
        if (fs_ends_with(p, ".nii.gz") || fs_ends_with(p, ".nii")) w->SetImageIO(itk::NiftiImageIO::New());
        else if (fs_ends_with(p, ".mha")) w->SetImageIO(itk::MetaImageIO::New());
        else w->SetImageIO(itk::NrrdImageIO::New());
        w->SetFileName(tmp);
        w->SetInput(img);
        w->SetUseCompression(true);
        w->Update();
    } catch (const std::exception &e) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write: %s", path.c_str(), e.what());
    }
    return fs_commit(tmp, path.c_str(), err);
}

}  // namespace

extern "C" aac_status aac_write_images(const aac_results *r, const char *dir, aac_error *err) {
    aac_status st = out_check(r, 0, "images", err);
    if (st != AAC_OK) return st;
    if (!dir) return aac_fail(err, AAC_ERR_ARG, "aac_write_images: no folder");
    const aac_volume *v = r->source;
    const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    const std::string d = std::string(dir) + "/";
    try {
        std::vector<uint8_t> labels(n);
        if ((st = aac_results_labels(r, labels.data(), err)) != AAC_OK) return st;
        const float *input = v->voxels + (size_t)r->t * n;
        if ((st = write_image<float>(v, r->map, d + "anomaly_map.nii.gz", err)) != AAC_OK ||
            (st = write_image<float>(v, r->map, d + "anomaly_map.nrrd", err)) != AAC_OK ||
            (st = write_image<uint8_t>(v, labels.data(), d + "label_map.nii.gz", err)) != AAC_OK ||
            (st = write_image<uint8_t>(v, labels.data(), d + "label_map.nrrd", err)) != AAC_OK ||
            (st = write_image<float>(v, input, d + "input.nrrd", err)) != AAC_OK)
            return st;
    } catch (const std::bad_alloc &) {
        return aac_fail(err, AAC_ERR_NOMEM, "images of %s: out of memory", v->source);
    }
    return AAC_OK;
}

extern "C" aac_status aac_write_result_image(const aac_results *r, aac_result_image which, const char *path,
                                             aac_error *err) {
    aac_status st = out_check(r, 0, "result image", err);
    if (st != AAC_OK) return st;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "aac_write_result_image: no path");
    /* single-file formats only: a detached header would name its data file by the temporary name */
    if (!fs_ends_with(path, ".nrrd") && !fs_ends_with(path, ".nii") && !fs_ends_with(path, ".nii.gz") &&
        !fs_ends_with(path, ".mha"))
        return aac_fail(err, AAC_ERR_ARG, "%s: the name must end in .nrrd, .nii, .nii.gz or .mha", path);
    const aac_volume *v = r->source;
    const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    try {
        if (which == AAC_IMAGE_LABEL_MAP) {
            std::vector<uint8_t> labels(n);
            if ((st = aac_results_labels(r, labels.data(), err)) != AAC_OK) return st;
            return write_image<uint8_t>(v, labels.data(), path, err);
        }
        if (which == AAC_IMAGE_ANOMALY_MAP) return write_image<float>(v, r->map, path, err);
        if (which == AAC_IMAGE_INPUT) return write_image<float>(v, v->voxels + (size_t)r->t * n, path, err);
    } catch (const std::bad_alloc &) {
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    return aac_fail(err, AAC_ERR_ARG, "aac_write_result_image: unknown image %d", (int)which);
}
