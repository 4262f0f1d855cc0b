// dcm_clean.cpp - what an output object takes from its source: patient, patient study, general
// study, frame of reference and character set, each attribute checked before it is copied.
// Sources come de-identified, exported, converted and hand-edited; a value that breaks its VR,
// its enumeration or its condition would make every object written from it invalid. So: a
// Type 2 value that fails is written empty, a Type 3 one is left out, the Type 1 UIDs are
// derived when missing (the same for every object of a series), and the conditions of the
// Patient module are met (de-identification method, animal patients, responsible person).
#include <cstring>
#include <string>

#include "dcm_out.h"

namespace dcmout {

namespace {

enum class Kind { Text, Enum, Codes, EmptySeq };

struct Attr {
    DcmTagKey tag;
    char type;  // '2': written, empty when the source has no valid value; '3': only when valid
    Kind kind;
    const char *const *enums;  // Kind::Enum: the allowed values, NULL-terminated
};

const char *const kSex[] = {"M", "F", "O", nullptr};
const char *const kYesNo[] = {"YES", "NO", nullptr};
const char *const kIdType[] = {"TEXT", "RFID", "BARCODE", nullptr};
const char *const kNeutered[] = {"ALTERED", "UNALTERED", nullptr};

// Patient (C.7.1.1), Patient Study (C.7.2.2), General Study (C.7.2.1) as far as they describe
// the patient and the study; the UIDs and the conditional attributes are handled below.
const Attr kAttrs[] = {
    {DCM_PatientName, '2', Kind::Text, nullptr},
    {DCM_PatientID, '2', Kind::Text, nullptr},
    {DCM_IssuerOfPatientID, '3', Kind::Text, nullptr},
    {DCM_TypeOfPatientID, '3', Kind::Enum, kIdType},
    {DCM_PatientBirthDate, '2', Kind::Text, nullptr},
    {DCM_PatientBirthTime, '3', Kind::Text, nullptr},
    {DCM_PatientSex, '2', Kind::Enum, kSex},
    {DCM_QualityControlSubject, '3', Kind::Enum, kYesNo},
    {DCM_PatientComments, '3', Kind::Text, nullptr},
    {DCM_PatientSpeciesDescription, '3', Kind::Text, nullptr},
    {DCM_PatientSpeciesCodeSequence, '3', Kind::Codes, nullptr},
    {DCM_PatientBreedDescription, '3', Kind::Text, nullptr},
    {DCM_PatientBreedCodeSequence, '3', Kind::Codes, nullptr},
    {DCM_BreedRegistrationSequence, '3', Kind::EmptySeq, nullptr},
    {DCM_ResponsiblePerson, '3', Kind::Text, nullptr},
    {DCM_ResponsiblePersonRole, '3', Kind::Text, nullptr},
    {DCM_ResponsibleOrganization, '3', Kind::Text, nullptr},
    {DCM_PatientIdentityRemoved, '3', Kind::Enum, kYesNo},
    {DCM_DeidentificationMethod, '3', Kind::Text, nullptr},
    {DCM_DeidentificationMethodCodeSequence, '3', Kind::Codes, nullptr},
    {DCM_AdmittingDiagnosesDescription, '3', Kind::Text, nullptr},
    {DCM_PatientAge, '3', Kind::Text, nullptr},
    {DCM_PatientSize, '3', Kind::Text, nullptr},
    {DCM_PatientWeight, '3', Kind::Text, nullptr},
    {DCM_PatientSexNeutered, '3', Kind::Enum, kNeutered},
    {DCM_Occupation, '3', Kind::Text, nullptr},
    {DCM_AdditionalPatientHistory, '3', Kind::Text, nullptr},
    {DCM_StudyDate, '2', Kind::Text, nullptr},
    {DCM_StudyTime, '2', Kind::Text, nullptr},
    {DCM_ReferringPhysicianName, '2', Kind::Text, nullptr},
    {DCM_StudyID, '2', Kind::Text, nullptr},
    {DCM_AccessionNumber, '2', Kind::Text, nullptr},
    {DCM_StudyDescription, '3', Kind::Text, nullptr},
    {DCM_PhysiciansOfRecord, '3', Kind::Text, nullptr},
    {DCM_NameOfPhysiciansReadingStudy, '3', Kind::Text, nullptr},
    {DCM_ProcedureCodeSequence, '3', Kind::Codes, nullptr},
};

// Defined terms of Specific Character Set (PS3.3 C.12.1.1.2).
const char *const kCharsets[] = {
    "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144", "ISO_IR 127", "ISO_IR 126",
    "ISO_IR 138", "ISO_IR 148", "ISO_IR 203", "ISO_IR 13", "ISO_IR 166", "ISO_IR 192", "GB18030", "GBK",
    "ISO 2022 IR 6", "ISO 2022 IR 100", "ISO 2022 IR 101", "ISO 2022 IR 109", "ISO 2022 IR 110",
    "ISO 2022 IR 144", "ISO 2022 IR 127", "ISO 2022 IR 126", "ISO 2022 IR 138", "ISO 2022 IR 148",
    "ISO 2022 IR 203", "ISO 2022 IR 13", "ISO 2022 IR 166", "ISO 2022 IR 87", "ISO 2022 IR 159",
    "ISO 2022 IR 149", "ISO 2022 IR 58", nullptr};

const char kDeidUnstated[] = "unspecified: the source states identity removed but no method";

bool in_list(const OFString &v, const char *const *list) {
    for (; *list; list++)
        if (v == *list) return true;
    return false;
}

// Values of a multi-valued string, split on backslashes.
template <typename F>
bool each_value(const OFString &s, F ok) {
    size_t a = 0;
    for (;;) {
        const size_t b = s.find('\\', a);
        if (!ok(s.substr(a, b == OFString_npos ? OFString_npos : b - a))) return false;
        if (b == OFString_npos) return true;
        a = b + 1;
    }
}

bool digits(const OFString &s, size_t from, size_t n) {
    for (size_t i = from; i < from + n; i++)
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
    return true;
}

int num(const OFString &s, size_t from, size_t n) { return atoi(s.substr(from, n).c_str()); }

// What DCMTK's VR checker lets through but a validator does not: over-long values, calendar
// dates, clock times, person names of at most five components in at most three groups.
bool plausible(DcmEVR vr, const OFString &value) {
    // DCMTK's check does not count characters: each value within its VR's maximum length.
    const Uint32 max_len = DcmVR(vr).getMaxValueLength();
    if (vr != EVR_PN && !each_value(value, [&](const OFString &v) { return v.size() <= max_len; })) return false;
    switch (vr) {
    case EVR_DA:
        return each_value(value, [](const OFString &v) {
            return v.size() == 8 && digits(v, 0, 8) && num(v, 4, 2) >= 1 && num(v, 4, 2) <= 12 && num(v, 6, 2) >= 1 &&
                   num(v, 6, 2) <= 31;
        });
    case EVR_TM:
        return each_value(value, [](const OFString &v) {
            if (v.size() < 2 || !digits(v, 0, 2) || num(v, 0, 2) > 23) return false;
            if (v.size() >= 4 && (!digits(v, 2, 2) || num(v, 2, 2) > 59)) return false;
            if (v.size() >= 6 && (!digits(v, 4, 2) || num(v, 4, 2) > 60)) return false;
            return v.size() == 2 || v.size() == 4 || v.size() == 6 || (v.size() > 7 && v[6] == '.' && digits(v, 7, v.size() - 7));
        });
    case EVR_PN:
        return each_value(value, [](const OFString &v) {
            int groups = 1, carets = 0;
            size_t len = 0;
            for (char c : std::string(v.c_str(), v.size())) {
                if (c == '=') {
                    if (++groups > 3) return false;
                    carets = 0, len = 0;
                } else if ((c == '^' && ++carets > 4) || ++len > 64) {
                    return false;
                }
            }
            return true;
        });
    default:
        return true;
    }
}

bool has_value(DcmItem &it, const DcmTagKey &tag) {
    OFString v;
    return it.findAndGetOFStringArray(tag, v).good() && !v.empty();
}

bool has_items(DcmItem &it, const DcmTagKey &tag) {
    DcmSequenceOfItems *sq = nullptr;
    return it.findAndGetSequence(tag, sq).good() && sq && sq->card() > 0;
}

// One string attribute from src into clean when its value passes DCMTK's VR check (with the
// character set clean holds) and plausible(); false when it was not copied.
bool copy_text(DcmItem &src, DcmItem &clean, const DcmTagKey &tag, bool ascii_only) {
    DcmElement *el = nullptr;
    if (src.findAndGetElement(tag, el).bad() || !el) return false;
    const DcmTag want(tag);  // the dictionary's VR: a source element of another VR is not that attribute
    if (el->getTag().getEVR() != want.getEVR()) return false;
    OFString value;
    if (el->getOFStringArray(value).bad()) return false;
    while (!value.empty() && value[value.size() - 1] == ' ') value.erase(value.size() - 1);
    if (value.empty()) return false;
    if (ascii_only)
        for (char c : std::string(value.c_str(), value.size()))
            if ((unsigned char)c >= 0x80 || c == 0x1B) return false;
    if (!plausible(want.getEVR(), value)) return false;
    if (clean.putAndInsertOFStringArray(tag, value).bad()) return false;
    DcmElement *put = nullptr;
    if (clean.findAndGetElement(tag, put).bad() || !put || put->checkValue("1-n").bad()) {
        clean.findAndDeleteElement(tag);
        return false;
    }
    const DcmDictEntry *e = dcmDataDict.rdlock().findEntry(tag, nullptr);
    const int vm_max = e ? e->getVMMax() : 1;
    dcmDataDict.rdunlock();
    if ((int)put->getVM() > vm_max && vm_max > 0) {
        clean.findAndDeleteElement(tag);
        return false;
    }
    return true;
}

// Items of a code sequence with a code value, a scheme and a meaning that pass their VRs.
void copy_codes(DcmItem &src, DcmItem &clean, const DcmTagKey &tag, bool ascii_only) {
    DcmSequenceOfItems *sq = nullptr;
    if (src.findAndGetSequence(tag, sq).bad() || !sq) return;
    for (unsigned long i = 0; i < sq->card(); i++) {
        DcmItem *in = sq->getItem(i);
        DcmItem *out = nullptr;
        if (!in || clean.findOrCreateSequenceItem(tag, out, -2).bad() || !out) continue;
        const bool ok = copy_text(*in, *out, DCM_CodeValue, ascii_only) &&
                        copy_text(*in, *out, DCM_CodingSchemeDesignator, ascii_only) &&
                        copy_text(*in, *out, DCM_CodeMeaning, ascii_only);
        if (ok) {
            copy_text(*in, *out, DCM_CodingSchemeVersion, ascii_only);
        } else {
            DcmSequenceOfItems *made = nullptr;
            if (clean.findAndGetSequence(tag, made).good() && made) delete made->remove(made->card() - 1);
        }
    }
    if (!has_items(clean, tag)) clean.findAndDeleteElement(tag);
}

bool copy_enum(DcmItem &src, DcmItem &clean, const DcmTagKey &tag, const char *const *allowed) {
    OFString v;
    if (src.findAndGetOFString(tag, v).bad()) return false;
    while (!v.empty() && v[v.size() - 1] == ' ') v.erase(v.size() - 1);
    return in_list(v, allowed) && clean.putAndInsertString(tag, v.c_str()).good();
}

bool valid_uid(const OFString &v) {
    return !v.empty() && v.size() <= 64 && DcmUniqueIdentifier::checkStringValue(v, "1").good();
}

// The source's UID when valid, else one derived from the source series and role, so that every
// object written from one series gets the same.
void uid_or_derived(DcmItem &src, const DcmTagKey &tag, const aac_volume *v, const char *role, DcmItem &clean) {
    OFString u;
    src.findAndGetOFString(tag, u);
    while (!u.empty() && (u[u.size() - 1] == ' ' || u[u.size() - 1] == '\0')) u.erase(u.size() - 1);
    if (!valid_uid(u)) {
        char made[AAC_UID_LEN];
        out_uid_derived(v->series_uid[0] ? v->series_uid : v->slice_uids[0], role, made);
        u = made;
    }
    clean.putAndInsertString(tag, u.c_str());
}

}  // namespace

void clean_source(DcmItem &src, const aac_volume *v, bool frame_of_reference, DcmItem &clean) {
    clean.clear();
    // Character set: every value a defined term, else none, and then only ASCII text is copied.
    OFString cs;
    bool ascii_only = true;
    if (src.findAndGetOFStringArray(DCM_SpecificCharacterSet, cs).good() && !cs.empty()) {
        int n = 0;
        const bool known = each_value(cs, [&](const OFString &t) {
            OFString term = t;
            while (!term.empty() && term[term.size() - 1] == ' ') term.erase(term.size() - 1);
            return (term.empty() && n++ == 0) || (n++, in_list(term, kCharsets));  // value 1 may be empty
        });
        if (known) {
            clean.putAndInsertOFStringArray(DCM_SpecificCharacterSet, cs);
            ascii_only = false;
        }
    }
    for (const Attr &a : kAttrs) {
        bool copied = false;
        switch (a.kind) {
        case Kind::Text: copied = copy_text(src, clean, a.tag, ascii_only); break;
        case Kind::Enum: copied = copy_enum(src, clean, a.tag, a.enums); break;
        case Kind::Codes:
            copy_codes(src, clean, a.tag, ascii_only);
            copied = has_items(clean, a.tag);
            break;
        case Kind::EmptySeq: break;
        }
        if (!copied && a.type == '2') clean.insertEmptyElement(a.tag);
    }
    uid_or_derived(src, DCM_StudyInstanceUID, v, "study", clean);
    if (frame_of_reference) {
        uid_or_derived(src, DCM_FrameOfReferenceUID, v, "frame-of-reference", clean);
        if (!copy_text(src, clean, DCM_PositionReferenceIndicator, ascii_only))
            clean.insertEmptyElement(DCM_PositionReferenceIndicator);
    }

    // Patient Identity Removed YES needs a method (1C): say that the source gave none rather
    // than drop the statement that identity was removed.
    OFString removed;
    clean.findAndGetOFString(DCM_PatientIdentityRemoved, removed);
    if (removed == "YES" && !has_value(clean, DCM_DeidentificationMethod) &&
        !has_items(clean, DCM_DeidentificationMethodCodeSequence))
        clean.putAndInsertString(DCM_DeidentificationMethod, kDeidUnstated);
    // A responsible person needs a role (1C); without one the person is left unnamed (2C).
    if (has_value(clean, DCM_ResponsiblePerson) && !has_value(clean, DCM_ResponsiblePersonRole))
        clean.putAndInsertString(DCM_ResponsiblePerson, "");
    // An animal patient (a species) needs breed, registration, responsible person and
    // organisation (2C, empty allowed) and neutering status (2C, Patient Study).
    if (has_value(clean, DCM_PatientSpeciesDescription) || has_items(clean, DCM_PatientSpeciesCodeSequence)) {
        for (const DcmTagKey &t : {DCM_PatientBreedDescription, DCM_PatientBreedCodeSequence,
                                   DCM_BreedRegistrationSequence, DCM_ResponsiblePerson, DCM_ResponsibleOrganization,
                                   DCM_PatientSexNeutered})
            if (!clean.tagExists(t)) clean.insertEmptyElement(t);
    }
}

void drop_invalid(DcmItem &ds) {
    OFString cs;
    const bool ascii_only = ds.findAndGetOFStringArray(DCM_SpecificCharacterSet, cs).bad() || cs.empty();
    for (unsigned long i = ds.card(); i-- > 0;) {
        DcmElement *e = ds.getElement(i);
        if (!e || !e->isaString() || e->getLength() == 0 || e->getLengthField() == DCM_UndefinedLength) continue;
        if (e->getTag().getGroup() == 0x7FE0 || e->getTag().isPrivate()) continue;
        OFString value;
        bool ok = e->getOFStringArray(value).good() && e->checkValue("1-n").good() && plausible(e->getTag().getEVR(), value);
        if (ok && ascii_only)
            for (char c : std::string(value.c_str(), value.size()))
                if ((unsigned char)c >= 0x80 || c == 0x1B) ok = false;
        if (!ok) delete ds.remove(i);
    }
}

void apply_clean(DcmItem &clean, DcmItem &out) {
    for (unsigned long i = 0; i < clean.card(); i++) {
        DcmElement *e = clean.getElement(i);
        if (e) out.insert(OFstatic_cast(DcmElement *, e->clone()), OFTrue /* replace */);
    }
}

bool valid_cs(const char *s) {
    const size_t n = strlen(s);
    if (n == 0 || n > 16) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == ' ' || s[i] == '_'))
            return false;
    return true;
}

}  // namespace dcmout
