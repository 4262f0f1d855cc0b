// scu.cpp - the client side (DCMTK DcmSCU): C-ECHO, C-STORE of files with a ledger of what was
// acknowledged, C-FIND at study level, and retrieving a study by C-GET (the objects come back on
// the same association) or C-MOVE (to a store SCP of ours on a port of our choosing). Received
// objects go through the node's own check and atomic commit (instance.c).
#include "net_dcmtk.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/scu.h>

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "error.h"
}
#include "fsutil.h"
#include "ingest.h"

extern "C" aac_net_scu_params aac_net_scu_default_params(void) {
    aac_net_scu_params p;
    memset(&p, 0, sizeof p);
    p.aet = "AACLIP";
    p.timeout_s = 30;
    p.max_pdu = 65536;
    return p;
}

namespace {

void logf(const aac_net_scu_params *p, const char *event, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void logf(const aac_net_scu_params *p, const char *event, const char *subject, const char *fmt, ...) {
    if (!p->log) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->log(p->user, event, subject, msg);
}

std::string peer_name(const aac_net_scu_params *p) {
    return std::string(p->peer.aet) + "@" + p->peer.host + ":" + std::to_string(p->peer.port);
}

// Received objects (C-GET's C-STORE sub-operations, or the C-MOVE store SCP) into a tree.
struct sink {
    std::string root, tmp_dir;
    std::atomic<unsigned long> seq{0};
    std::atomic<int> stored{0}, failed{0};
    const aac_net_scu_params *p;

    // The file tmp, complete: check and commit, or remove. Returns a DIMSE status.
    int take(const char *tmp, const char *sop_uid, char *comment, size_t cap) {
        net_instance in;
        aac_error e = {};
        if (net_instance_check(tmp, sop_uid, 1, &in, &e) || net_instance_commit(tmp, root.c_str(), &in, 1, 0, &e)) {
            fs_discard(tmp);
            snprintf(comment, cap, "%s", e.message);
            failed++;
            logf(p, "refused", sop_uid ? sop_uid : "", "instance not kept: %s", e.message);
            return NET_STATUS_CANNOT_UNDERSTAND;
        }
        stored++;
        return NET_STATUS_SUCCESS;
    }
};

// DcmSCU with TLS reachable (protected in 3.6.7) and C-GET's objects sent to a sink.
class net_scu : public DcmSCU {
  public:
    using DcmSCU::useSecureConnection;
    sink *out = nullptr;

    OFCondition handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset *obj, OFBool &cont,
                                   Uint16 &status) override {
        cont = OFTrue;
        if (!out) {
            delete obj;
            status = NET_STATUS_OUT_OF_RESOURCES;
            return EC_Normal;
        }
        char tmp[4200], comment[600];
        snprintf(tmp, sizeof tmp, "%s/%ld-%lu.rcv", out->tmp_dir.c_str(), (long)getpid(), out->seq.fetch_add(1));
        DcmFileFormat ff(obj);  // copies obj
        delete obj;
        OFCondition c = ff.saveFile(tmp, EXS_Unknown);
        if (c.bad()) {
            fs_discard(tmp);
            status = NET_STATUS_OUT_OF_RESOURCES;
            out->failed++;
            return EC_Normal;
        }
        status = (Uint16)out->take(tmp, nullptr, comment, sizeof comment);
        return EC_Normal;
    }
};

// A DcmSCU set up from our parameters, with its TLS layer (destroyed after the SCU).
struct client {
    std::unique_ptr<DcmTransportLayer> tls;
    net_scu scu;

    aac_status setup(const aac_net_scu_params *p, aac_error *err) {
        dcm_init();
        if (!p->aet || !aac_net_aet_valid(p->aet)) return aac_fail(err, AAC_ERR_ARG, "'%s' is not a valid AE title", p->aet ? p->aet : "");
        if (!aac_net_aet_valid(p->peer.aet) || !p->peer.host[0] || p->peer.port <= 0)
            return aac_fail(err, AAC_ERR_ARG, "no valid peer (AE@host:port)");
        const int t = p->timeout_s > 0 ? p->timeout_s : 30;
        scu.setAETitle(p->aet);
        scu.setPeerAETitle(p->peer.aet);
        scu.setPeerHostName(p->peer.host);
        scu.setPeerPort((Uint16)p->peer.port);
        scu.setMaxReceivePDULength(p->max_pdu > 0 ? (Uint32)p->max_pdu : 65536);
        scu.setACSETimeout((Uint32)t);
        scu.setDIMSETimeout((Uint32)t);
        scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
        scu.setConnectionTimeout(t);
        if (net_tls_wanted(&p->tls)) {
            tls.reset(net_tls_layer(&p->tls, NET_REQUESTOR, err));
            if (!tls) return err ? err->code : AAC_ERR_IO;
        }
        return AAC_OK;
    }

    // The network, then TLS on it (DcmSCU needs the network first), then the association.
    OFCondition open() {
        OFCondition c = scu.initNetwork();
        if (c.good() && tls) c = scu.useSecureConnection(tls.get());
        return c;
    }

    aac_status connect(const aac_net_scu_params *p, aac_error *err) {
        OFCondition c = open();
        if (c.good()) c = scu.negotiateAssociation();
        if (c.bad())
            return aac_fail(err, AAC_ERR_IO, "%s: association failed: %s", peer_name(p).c_str(), c.text());
        return AAC_OK;
    }
};

OFList<OFString> uncompressed() {
    OFList<OFString> ts;
    ts.push_back(UID_LittleEndianExplicitTransferSyntax);
    ts.push_back(UID_LittleEndianImplicitTransferSyntax);
    return ts;
}

bool status_ok(Uint16 s) { return s == STATUS_Success || (s & 0xF000) == 0xB000; }

}  // namespace

extern "C" aac_status aac_net_echo(const aac_net_scu_params *p, aac_error *err) {
    client cl;
    aac_status s = cl.setup(p, err);
    if (s) return s;
    cl.scu.addPresentationContext(UID_VerificationSOPClass, uncompressed());
    if ((s = cl.connect(p, err))) return s;
    OFCondition c = cl.scu.sendECHORequest(0);
    cl.scu.releaseAssociation();
    if (c.bad()) return aac_fail(err, AAC_ERR_IO, "%s: C-ECHO failed: %s", peer_name(p).c_str(), c.text());
    return AAC_OK;
}

extern "C" aac_status aac_net_store_files(const aac_net_scu_params *p, const char *const *files, int n,
                                          aac_ledger *ledger, aac_net_sent *outcome, aac_error *err) {
    std::vector<aac_net_sent> out((size_t)n, AAC_SENT_NOT_SENT);
    std::vector<net_instance> info((size_t)n);
    std::map<std::string, std::set<std::string>> contexts;  // SOP class -> transfer syntaxes
    int to_send = 0;
    for (int i = 0; i < n; i++) {
        aac_error e;
        if (net_instance_read(files[i], &info[i], &e) || !info[i].sop_class[0] || !info[i].sop_uid[0]) {
            out[i] = AAC_SENT_UNREADABLE;
            logf(p, "error", files[i], "not sent: %s", info[i].sop_class[0] ? "no SOP Instance UID" : e.message);
        } else if (ledger && aac_ledger_has(ledger, info[i].sop_uid)) {
            out[i] = AAC_SENT_SKIPPED;
        } else {
            contexts[info[i].sop_class].insert(info[i].ts_uid);
            to_send++;
        }
    }
    auto finish = [&](aac_status s) {
        if (outcome)
            for (int i = 0; i < n; i++) outcome[i] = out[(size_t)i];
        return s;
    };
    if (!to_send) return finish(AAC_OK);
    client cl;
    aac_status s = cl.setup(p, err);
    if (s) return finish(s);
    for (auto &c : contexts) {
        // The files' own syntax first; uncompressed as a fallback the SCU can convert to.
        for (const std::string &ts : c.second) {
            OFList<OFString> l;
            l.push_back(ts.c_str());
            cl.scu.addPresentationContext(c.first.c_str(), l);
        }
        cl.scu.addPresentationContext(c.first.c_str(), uncompressed());
    }
    if ((s = cl.connect(p, err))) return finish(s);
    int sent = 0, refused = 0;
    for (int i = 0; i < n && !s; i++) {
        if (out[(size_t)i] != AAC_SENT_NOT_SENT) continue;
        const net_instance &in = info[(size_t)i];
        if (!cl.scu.findAnyPresentationContextID(in.sop_class, in.ts_uid) &&
            !cl.scu.findAnyPresentationContextID(in.sop_class, UID_LittleEndianExplicitTransferSyntax)) {
            out[(size_t)i] = AAC_SENT_REFUSED;
            refused++;
            logf(p, "error", files[i], "refused: %s did not accept SOP class %s", peer_name(p).c_str(), in.sop_class);
            continue;
        }
        Uint16 status = 0;
        OFCondition c = cl.scu.sendSTORERequest(0, files[i], nullptr, status);
        if (c.bad()) {
            s = aac_fail(err, AAC_ERR_IO, "%s: C-STORE of %s failed: %s", peer_name(p).c_str(), files[i], c.text());
            break;
        }
        if (status_ok(status)) {
            out[(size_t)i] = AAC_SENT_OK;
            sent++;
            if (ledger && (s = aac_ledger_add(ledger, in.sop_uid, err))) break;
        } else {
            out[(size_t)i] = AAC_SENT_REFUSED;
            refused++;
            logf(p, "error", files[i], "refused by %s: status 0x%04x", peer_name(p).c_str(), status);
        }
    }
    if (s) cl.scu.abortAssociation();
    else cl.scu.releaseAssociation();
    logf(p, "association", peer_name(p).c_str(), "C-STORE: %d sent, %d refused%s", sent, refused,
         s ? ", association failed" : "");
    return finish(s);
}

namespace {

void put(DcmDataset &ds, const DcmTagKey &tag, const char *v) { ds.putAndInsertString(tag, v ? v : ""); }

void get(DcmItem *it, const DcmTagKey &tag, char *dst, size_t cap) {
    OFString v;
    dst[0] = '\0';
    if (it && it->findAndGetOFStringArray(tag, v).good()) snprintf(dst, cap, "%s", net_trim(v.c_str()).c_str());
}

}  // namespace

extern "C" aac_status aac_net_find_studies(const aac_net_scu_params *p, const aac_net_query *q, aac_net_study **out,
                                           int *n, aac_error *err) {
    *out = nullptr;
    *n = 0;
    client cl;
    aac_status s = cl.setup(p, err);
    if (s) return s;
    cl.scu.addPresentationContext(UID_FINDStudyRootQueryRetrieveInformationModel, uncompressed());
    if ((s = cl.connect(p, err))) return s;
    DcmDataset keys;
    put(keys, DCM_QueryRetrieveLevel, "STUDY");
    put(keys, DCM_StudyInstanceUID, q->study_uid);
    put(keys, DCM_PatientID, q->patient_id);
    put(keys, DCM_AccessionNumber, q->accession);
    put(keys, DCM_ModalitiesInStudy, q->modality);
    put(keys, DCM_StudyDate, q->study_date);
    put(keys, DCM_PatientName, "");
    put(keys, DCM_StudyDescription, "");
    put(keys, DCM_NumberOfStudyRelatedInstances, "");
    T_ASC_PresentationContextID pres = cl.scu.findPresentationContextID(UID_FINDStudyRootQueryRetrieveInformationModel, "");
    if (!pres) {
        cl.scu.releaseAssociation();
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s does not accept Study Root C-FIND", peer_name(p).c_str());
    }
    OFList<QRResponse *> responses;
    OFCondition c = cl.scu.sendFINDRequest(pres, &keys, &responses);
    std::vector<aac_net_study> found;
    Uint16 final_status = 0;
    for (QRResponse *r : responses) {
        if (r->m_dataset && (r->m_status == STATUS_Pending || r->m_status == 0xFF01)) {
            aac_net_study st;
            memset(&st, 0, sizeof st);
            get(r->m_dataset, DCM_StudyInstanceUID, st.study_uid, sizeof st.study_uid);
            get(r->m_dataset, DCM_PatientID, st.patient_id, sizeof st.patient_id);
            get(r->m_dataset, DCM_PatientName, st.patient_name, sizeof st.patient_name);
            get(r->m_dataset, DCM_AccessionNumber, st.accession, sizeof st.accession);
            get(r->m_dataset, DCM_StudyDate, st.study_date, sizeof st.study_date);
            get(r->m_dataset, DCM_ModalitiesInStudy, st.modalities, sizeof st.modalities);
            get(r->m_dataset, DCM_StudyDescription, st.description, sizeof st.description);
            Sint32 k = -1;
            st.n_instances = r->m_dataset->findAndGetSint32(DCM_NumberOfStudyRelatedInstances, k).good() ? (int)k : -1;
            if (st.study_uid[0]) found.push_back(st);
        } else {
            final_status = r->m_status;
        }
        delete r;
    }
    cl.scu.releaseAssociation();
    if (c.bad()) return aac_fail(err, AAC_ERR_IO, "%s: C-FIND failed: %s", peer_name(p).c_str(), c.text());
    if (final_status != STATUS_Success)
        return aac_fail(err, AAC_ERR_IO, "%s: C-FIND ended with status 0x%04x", peer_name(p).c_str(), final_status);
    if (!found.empty()) {
        *out = (aac_net_study *)malloc(found.size() * sizeof **out);
        if (!*out) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        memcpy(*out, found.data(), found.size() * sizeof **out);
        *n = (int)found.size();
    }
    logf(p, "association", peer_name(p).c_str(), "C-FIND: %d stud%s", *n, *n == 1 ? "y" : "ies");
    return AAC_OK;
}

namespace {

int sink_store(void *user, const char *tmp, int64_t, int64_t, const char *, const char *sop_uid, char *comment, size_t cap) {
    return ((sink *)user)->take(tmp, sop_uid, comment, cap);
}

}  // namespace

extern "C" aac_status aac_net_retrieve_study(const aac_net_scu_params *p, const char *study_uid, int move_port,
                                             const char *out_dir, aac_net_retrieved *counts, aac_error *err) {
    memset(counts, 0, sizeof *counts);
    if (!aac_net_uid_valid(study_uid)) return aac_fail(err, AAC_ERR_ARG, "'%s' is not a valid Study Instance UID", study_uid);
    sink snk;
    snk.root = out_dir;
    snk.tmp_dir = std::string(out_dir) + "/.incoming";
    snk.p = p;
    if (fs_mkdirs(snk.tmp_dir.c_str()))
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", snk.tmp_dir.c_str(), strerror(errno));
    client base;
    aac_status s = base.setup(p, err);
    if (s) return s;
    net_scu &cl = base.scu;
    cl.out = &snk;
    const char *model = move_port ? UID_MOVEStudyRootQueryRetrieveInformationModel
                                  : UID_GETStudyRootQueryRetrieveInformationModel;
    cl.addPresentationContext(model, uncompressed());
    if (!move_port) {
        // C-GET: we take the SCP role for the storage SOP classes on this association.
        OFList<OFString> ts;
        for (int i = 0; i < net_transfer_syntax_count(); i++) ts.push_back(net_transfer_syntax(i));
        for (int i = 0; i < net_image_sop_class_count(); i++)
            cl.addPresentationContext(net_image_sop_class(i), ts, ASC_SC_ROLE_SCP);
        for (int i = 0; i < net_other_sop_class_count(); i++)
            cl.addPresentationContext(net_other_sop_class(i), ts, ASC_SC_ROLE_SCP);
    }
    // C-MOVE: our store SCP, for the duration of the retrieve.
    net_scp *scp = nullptr;
    std::thread scp_thread;
    if (move_port) {
        net_scp_params sp = {};
        sp.aet = p->aet, sp.bind = p->bind, sp.port = move_port, sp.max_associations = 4;
        sp.max_pdu = p->max_pdu, sp.timeout_s = p->timeout_s, sp.tls = p->tls, sp.tmp_dir = snk.tmp_dir.c_str();
        sp.accept_other = 1;
        sp.store = sink_store;
        sp.log = p->log;
        sp.user = &snk;
        if ((s = net_scp_open(&sp, &scp, err))) return s;
        scp_thread = std::thread([scp] { net_scp_serve(scp); });
    }
    OFCondition c = base.open();
    if (c.good()) c = cl.negotiateAssociation();
    DcmDataset keys;
    put(keys, DCM_QueryRetrieveLevel, "STUDY");
    put(keys, DCM_StudyInstanceUID, study_uid);
    OFList<RetrieveResponse *> responses;
    T_ASC_PresentationContextID pres = 0;
    if (c.good()) {
        pres = cl.findPresentationContextID(model, "");
        if (!pres) s = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s does not accept Study Root %s", peer_name(p).c_str(),
                                move_port ? "C-MOVE" : "C-GET");
    } else {
        s = aac_fail(err, AAC_ERR_IO, "%s: association failed: %s", peer_name(p).c_str(), c.text());
    }
    if (!s) {
        c = move_port ? cl.sendMOVERequest(pres, p->aet, &keys, &responses) : cl.sendCGETRequest(pres, &keys, &responses);
        if (c.bad()) s = aac_fail(err, AAC_ERR_IO, "%s: %s failed: %s", peer_name(p).c_str(), move_port ? "C-MOVE" : "C-GET", c.text());
    }
    Uint16 final_status = 0;
    for (RetrieveResponse *r : responses) {
        if (r->m_status != STATUS_Pending) {
            final_status = r->m_status;
            counts->remote_failed = (int)r->m_numberOfFailedSubops;
            counts->remote_warning = (int)r->m_numberOfWarningSubops;
        }
        delete r;
    }
    if (cl.isConnected()) {
        if (s) cl.abortAssociation();
        else cl.releaseAssociation();
    }
    if (scp) {
        net_scp_stop(scp);
        scp_thread.join();
        net_scp_free(scp);
    }
    counts->stored = snk.stored;
    counts->failed = snk.failed;
    fs_remove_tree(snk.tmp_dir.c_str());
    if (!s && !status_ok(final_status))
        s = aac_fail(err, AAC_ERR_IO, "%s: %s ended with status 0x%04x", peer_name(p).c_str(),
                     move_port ? "C-MOVE" : "C-GET", final_status);
    logf(p, "association", peer_name(p).c_str(), "%s of study %s: %d stored, %d refused here, %d failed there",
         move_port ? "C-MOVE" : "C-GET", study_uid, counts->stored, counts->failed, counts->remote_failed);
    return s;
}
