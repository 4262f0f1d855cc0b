// dcm_out.h - DCMTK pieces shared by the SEG, Parametric Map and SR writers (internal, C++).
#ifndef AAC_DCM_OUT_H
#define AAC_DCM_OUT_H

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/iodcommn.h>
#include <dcmtk/dcmiod/iodmacro.h>
#include <dcmtk/dcmiod/modequipment.h>

#include "ingest.h"
#include "outputs.h"

extern "C" {
#include "error.h"
}

namespace dcmout {

// DS text of a number (at most 16 characters, reads back as the number when it can).
OFString ds(double v);
// "YYYYMMDD" and "HHMMSS" now.
void now(OFString &date, OFString &time);
// Header of a source file (pixel data and other large values stay on disk).
aac_status load_header(const char *path, DcmFileFormat &ff, aac_error *err);
// aaclip as the equipment that made the object.
IODGeneralEquipmentModule::EquipmentInfo equipment();
// "model=...; ..." for Algorithm Parameters: what a reader needs to reproduce the numbers.
OFString algorithm_parameters(const aac_results *r, const aac_output_params *p);
// 1 when every scored slice has the same orientation as the first.
bool constant_orientation(const aac_results *r);
// Shared Pixel Measures: PixelSpacing (row\column), SliceThickness.
void pixel_measures(const aac_results *r, FGPixelMeasures &pm);
// Plane orientation of slice z, as the source states it.
void orientation(const aac_results *r, int z, FGPlaneOrientationPatient &po);

// Per-frame functional groups of one frame on slice z: plane position (the source's), frame
// content (dimension index values), derivation image (the source instance and frame) and,
// when orientations differ between slices, plane orientation.
class FrameGroups {
  public:
    FrameGroups(const aac_results *r, const CodeSequenceMacro &derivation_code, const OFString &description = "");
    aac_status set(int z, Uint32 dim0, Uint32 dim1, int n_dims, aac_error *err);
    OFVector<FGBase *> &groups() { return list_; }

  private:
    const aac_results *r_;
    CodeSequenceMacro code_;
    OFString description_;
    bool per_frame_orientation_;
    FGPlanePosPatient pos_;
    FGPlaneOrientationPatient orient_;
    FGFrameContent content_;
    FGDerivationImage deriv_;
    OFVector<FGBase *> list_;
};

// An image reference: SOP class and instance, and the 1-based frame when frame > 0.
OFCondition set_image_reference(ImageSOPInstanceReferenceMacro &ref, const char *sop_class, const char *sop_uid,
                                int frame);

// Referenced Series Sequence (Common Instance Reference) listing the scored source instances.
aac_status referenced_series(const aac_results *r, IODCommonInstanceReferenceModule &m, aac_error *err);
// Declares the private coding scheme in the Coding Scheme Identification Sequence.
void declare_private_scheme(DcmItem &ds);
// What an object takes from its source (dcm_clean.cpp): clean receives the source's Patient,
// Patient Study and General Study attributes (and with frame_of_reference its Frame of
// Reference), each only when valid for its VR and enumeration, Type 2 ones empty otherwise; the
// Study (and Frame of Reference) UID derived from the source series when the source has none
// valid; the conditions of the Patient module met (de-identification method, animal patients,
// responsible person); the character set when it is a defined term (else only ASCII text).
void clean_source(DcmItem &src, const aac_volume *v, bool frame_of_reference, DcmItem &clean);
// Removes from ds (top level) every string attribute whose value fails its VR (DCMTK's check
// and the calendar / name checks of clean_source): a source header made fit to be described.
void drop_invalid(DcmItem &ds);
// Puts every attribute of clean into out, replacing what out holds.
void apply_clean(DcmItem &clean, DcmItem &out);
// A valid CS value: 1 to 16 of A-Z, 0-9, space, underscore.
bool valid_cs(const char *s);
// Writes ff to a temporary file beside path, then renames it into place.
aac_status save_atomic(DcmFileFormat &ff, const char *path, aac_error *err);

}  // namespace dcmout

#endif
