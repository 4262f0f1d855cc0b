// itk_io.cpp - ITK wrapper: NIfTI / NRRD / MetaImage into an aac_volume, and aac_volume out as
// NIfTI (in its own voxel order or another one, e.g. dcm2niix's). The image IO is chosen here by file name and set on the reader or writer, so no ITK
// object factory (process-global) has to be registered.
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <strings.h>

#include "ingest.h"

extern "C" {
#include "error.h"
}

namespace {

bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

itk::ImageIOBase::Pointer io_for(const char *path) {
    if (ends_with(path, ".nii") || ends_with(path, ".nii.gz")) return itk::NiftiImageIO::New().GetPointer();
    if (ends_with(path, ".nrrd") || ends_with(path, ".nhdr")) return itk::NrrdImageIO::New().GetPointer();
    if (ends_with(path, ".mha") || ends_with(path, ".mhd")) return itk::MetaImageIO::New().GetPointer();
    return nullptr;
}

// The volume in another voxel order (aac_volume_write_nifti_axes): written axis a runs along
// the volume's axis src[a], reversed when rev[a]; the geometry follows, so each voxel keeps its
// place in the world. Identity for aac_volume_write_nifti.
struct order {
    int src[3] = {0, 1, 2};
    bool rev[3] = {false, false, false};
};

template <typename T, unsigned D>
void write_as(const aac_volume *v, const order &o, itk::ImageIOBase *io, const char *path) {
    using Image = itk::Image<T, D>;
    auto img = Image::New();
    typename Image::RegionType region;
    typename Image::SpacingType spacing;
    typename Image::PointType origin;
    typename Image::DirectionType dir;
    dir.SetIdentity();
    // index of the volume's voxel that lands at (0,0,0), and strides through the volume
    size_t stride[3] = {1, (size_t)v->dim[0], (size_t)v->dim[0] * v->dim[1]};
    double corner[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++)
        if (o.rev[a]) corner[o.src[a]] = v->dim[o.src[a]] - 1;
    for (unsigned a = 0; a < D; a++) {
        const int s = a < 3 ? o.src[a] : 3;
        region.SetSize(a, (itk::SizeValueType)v->dim[s]);
        spacing[a] = a < 3 ? v->spacing[s] : (v->t_spacing > 0 ? v->t_spacing : 1.0);
        origin[a] = 0.0;
        if (a < 3) {
            origin[a] = v->origin[a];
            for (int k = 0; k < 3; k++)  // only where moved: the identity writes the origin as it is
                if (corner[k] != 0) origin[a] += v->direction[a * 3 + k] * v->spacing[k] * corner[k];
        }
    }
    for (unsigned r = 0; r < 3; r++)
        for (unsigned c = 0; c < 3; c++) dir(r, c) = v->direction[r * 3 + o.src[c]] * (o.rev[c] ? -1.0 : 1.0);
    img->SetRegions(region);
    img->SetSpacing(spacing);
    img->SetOrigin(origin);
    img->SetDirection(dir);
    img->Allocate();
    T *dst = img->GetBufferPointer();
    // written (x, y, z) reads the volume at base + x*step[0] + y*step[1] + z*step[2]
    ptrdiff_t step[3];
    size_t base = 0;
    for (int a = 0; a < 3; a++) {
        const int s = o.src[a];
        step[a] = o.rev[a] ? -(ptrdiff_t)stride[s] : (ptrdiff_t)stride[s];
        if (o.rev[a]) base += stride[s] * (size_t)(v->dim[s] - 1);
    }
    const int nx = v->dim[o.src[0]], ny = v->dim[o.src[1]], nz = v->dim[o.src[2]];
    const size_t vol = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    for (int t = 0; t < v->dim[3]; t++) {
        const float *src = v->voxels + (size_t)t * vol + base;
        for (int z = 0; z < nz; z++)
            for (int y = 0; y < ny; y++) {
                const float *row = src + z * step[2] + y * step[1];
                for (int x = 0; x < nx; x++) {
                    const float f = row[x * step[0]];
                    *dst++ = (T)(std::is_integral<T>::value ? std::lrint(f) : f);
                }
            }
    }
    auto w = itk::ImageFileWriter<Image>::New();
    w->SetImageIO(io);
    w->SetFileName(path);
    w->SetInput(img);
    w->Update();
}

template <typename T>
void write_typed(const aac_volume *v, const order &o, itk::ImageIOBase *io, const char *path) {
    if (v->dim[3] > 1) write_as<T, 4>(v, o, io, path);
    else write_as<T, 3>(v, o, io, path);
}

}  // namespace

extern "C" aac_status itk_read_info(const char *path, aac_series_info *info, aac_error *err) {
    auto io = io_for(path);
    if (!io) return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: not a volume file", path);
    aac_status st = vol_check_file(path, err);  // before ITK trusts the header
    if (st != AAC_OK) return st;
    try {
        if (!io->CanReadFile(path)) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot be read as %s", path, io->GetNameOfClass());
        io->SetFileName(path);
        io->ReadImageInformation();
        const unsigned nd = io->GetNumberOfDimensions();
        if (nd < 2 || nd > 4 || io->GetNumberOfComponents() != 1)
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %u dimensions, %u components (scalar 2-D to 4-D only)",
                            path, nd, io->GetNumberOfComponents());
        for (unsigned a = 0; a < 4; a++) {
            info->dim[a] = a < nd ? (int)io->GetDimensions(a) : 1;
            if (a < 3) info->spacing[a] = a < nd ? io->GetSpacing(a) : 1.0;
        }
        const char *slash = strrchr(path, '/');
        copy_trim(info->series_description, sizeof info->series_description, slash ? slash + 1 : path);
        copy_trim(info->transfer_syntax, sizeof info->transfer_syntax, io->GetNameOfClass());
        return AAC_OK;
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_FORMAT, "%s: %s", path, e.what());
    }
}

extern "C" aac_status aac_volume_read(const char *path, aac_volume **out, aac_error *err) {
    if (!path || !out) return aac_fail(err, AAC_ERR_ARG, "aac_volume_read: no path");
    *out = nullptr;
    auto io = io_for(path);
    if (!io) return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: not a .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd file", path);
    aac_status st = vol_check_file(path, err);  // before ITK trusts the header
    if (st != AAC_OK) return st;
    aac_volume *v = nullptr;
    try {
        if (!io->CanReadFile(path)) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot be read as %s", path, io->GetNameOfClass());
        io->SetFileName(path);
        io->ReadImageInformation();
        if (io->GetNumberOfComponents() != 1)
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %u components per voxel (only scalar images)", path,
                            io->GetNumberOfComponents());
        if (io->GetNumberOfDimensions() > 4 || io->GetNumberOfDimensions() < 2)
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %u dimensions (2 to 4 supported)", path,
                            io->GetNumberOfDimensions());
        using Image = itk::Image<float, 4>;
        auto r = itk::ImageFileReader<Image>::New();
        r->SetImageIO(io);
        r->SetFileName(path);
        r->Update();
        Image *img = r->GetOutput();
        v = (aac_volume *)calloc(1, sizeof *v);
        if (!v) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
        const auto size = img->GetLargestPossibleRegion().GetSize();
        for (int a = 0; a < 4; a++) {
            if (size[a] > (itk::SizeValueType)std::numeric_limits<int>::max()) throw std::runtime_error("image too large");
            v->dim[a] = (int)size[a];
        }
        const size_t n = aac_volume_voxel_count(v);
        v->voxels = (float *)malloc(n * sizeof(float));
        if (!v->voxels) {
            aac_volume_free(v);
            return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory for %zu voxels", path, n);
        }
        memcpy(v->voxels, img->GetBufferPointer(), n * sizeof(float));
        for (int a = 0; a < 3; a++) {
            v->origin[a] = img->GetOrigin()[a];
            v->spacing[a] = img->GetSpacing()[a];
            for (int c = 0; c < 3; c++) v->direction[a * 3 + c] = img->GetDirection()(a, c);
        }
        v->t_spacing = v->dim[3] > 1 ? img->GetSpacing()[3] : 0;
        v->series_number = -1;
        copy_trim(v->source, sizeof v->source, path);
        *out = v;
        return AAC_OK;
    } catch (const std::exception &e) {
        aac_volume_free(v);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: %s", path, e.what());
    }
}

extern "C" aac_status aac_volume_write_nifti(const aac_volume *v, const char *path, aac_error *err) {
    static const int identity[3] = {1, 2, 3};
    return aac_volume_write_nifti_axes(v, identity, path, err);
}

extern "C" aac_status aac_volume_write_nifti_axes(const aac_volume *v, const int axes[3], const char *path,
                                                  aac_error *err) {
    if (!v || !path || !v->voxels || !axes)
        return aac_fail(err, AAC_ERR_ARG, "aac_volume_write_nifti: no volume, path or axes");
    order o;
    int used = 0;
    for (int a = 0; a < 3; a++) {
        const int k = axes[a] < 0 ? -axes[a] : axes[a];
        if (k < 1 || k > 3 || (used & (1 << k)))
            return aac_fail(err, AAC_ERR_ARG, "%s: axes %d %d %d are not a signed permutation of 1 2 3", path,
                            axes[0], axes[1], axes[2]);
        used |= 1 << k;
        o.src[a] = k - 1;
        o.rev[a] = axes[a] < 0;
    }
    if (!(ends_with(path, ".nii") || ends_with(path, ".nii.gz")))
        return aac_fail(err, AAC_ERR_ARG, "%s: NIfTI file names end in .nii or .nii.gz", path);
    // Smallest exact type, like dcm2niix's int16 for most scanners; float32 otherwise.
    const size_t n = aac_volume_voxel_count(v);
    bool integral = true;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n && integral; i++) {
        const float x = v->voxels[i];
        if (!std::isfinite(x) || x != std::nearbyint(x)) integral = false;
        if (i == 0 || x < lo) lo = x;
        if (i == 0 || x > hi) hi = x;
    }
    try {
        auto io = itk::NiftiImageIO::New();
        if (integral && lo >= -32768 && hi <= 32767) write_typed<int16_t>(v, o, io, path);
        else if (integral && lo >= 0 && hi <= 65535) write_typed<uint16_t>(v, o, io, path);
        else if (integral && lo >= -2147483648.0 && hi <= 2147483647.0) write_typed<int32_t>(v, o, io, path);
        else write_typed<float>(v, o, io, path);
    } catch (const std::exception &e) {
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write NIfTI: %s", path, e.what());
    }
    return AAC_OK;
}
