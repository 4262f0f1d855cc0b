// scp.cpp - the acceptor of a node (DCMTK dcmnet, low-level ASC/DIMSE API): associations
// negotiated for Verification and the image storage SOP classes the ingestion reads (other
// SOP classes refused at negotiation), each served on its own thread; C-ECHO; C-STORE
// received straight into a file (a receive pool file when one is ready; bit for bit after the
// File Meta Information, compressed syntaxes as received), sealed with its receive record,
// that a handler checks and commits before the response says success.
#include "net_dcmtk.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcostrmf.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/dimse.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dulstruc.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cerrno>
#include <cstring>
#include <string>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

extern "C" {
#include "error.h"
}
#include "fsutil.h"
#include "ingest.h"

namespace {

const char *const kImageClasses[] = {
    UID_CTImageStorage,
    UID_EnhancedCTImageStorage,
    UID_LegacyConvertedEnhancedCTImageStorage,
    UID_MRImageStorage,
    UID_EnhancedMRImageStorage,
    UID_EnhancedMRColorImageStorage,
    UID_LegacyConvertedEnhancedMRImageStorage,
    UID_PositronEmissionTomographyImageStorage,
    UID_EnhancedPETImageStorage,
    UID_LegacyConvertedEnhancedPETImageStorage,
    UID_NuclearMedicineImageStorage,
    UID_ComputedRadiographyImageStorage,
    UID_DigitalXRayImageStorageForPresentation,
    UID_DigitalXRayImageStorageForProcessing,
    UID_DigitalMammographyXRayImageStorageForPresentation,
    UID_DigitalMammographyXRayImageStorageForProcessing,
    UID_BreastTomosynthesisImageStorage,
    UID_UltrasoundImageStorage,
    UID_UltrasoundMultiframeImageStorage,
    UID_XRayAngiographicImageStorage,
    UID_EnhancedXAImageStorage,
    UID_XRayRadiofluoroscopicImageStorage,
    UID_EnhancedXRFImageStorage,
    UID_SecondaryCaptureImageStorage,
    UID_MultiframeGrayscaleByteSecondaryCaptureImageStorage,
    UID_MultiframeGrayscaleWordSecondaryCaptureImageStorage,
    UID_MultiframeTrueColorSecondaryCaptureImageStorage,
};
const int kNumImageClasses = (int)(sizeof kImageClasses / sizeof kImageClasses[0]);

// Objects a study holds besides images (results, reports, annotations): a pull keeps them as
// they come, it does not score them.
const char *const kOtherClasses[] = {
    UID_SegmentationStorage,
    UID_ParametricMapStorage,
    UID_BasicTextSRStorage,
    UID_EnhancedSRStorage,
    UID_ComprehensiveSRStorage,
    UID_Comprehensive3DSRStorage,
    UID_KeyObjectSelectionDocumentStorage,
    UID_GrayscaleSoftcopyPresentationStateStorage,
    UID_EncapsulatedPDFStorage,
    UID_RTStructureSetStorage,
    UID_SpatialRegistrationStorage,
    UID_RawDataStorage,
};
const int kNumOtherClasses = (int)(sizeof kOtherClasses / sizeof kOtherClasses[0]);

// Uncompressed first (what most senders hold), then what the ingestion decodes: a sender
// proposing its compressed syntax gets it accepted and the file is stored as received.
const char *const kAllSyntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax,
    UID_LittleEndianImplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,
    UID_DeflatedExplicitVRLittleEndianTransferSyntax,
    UID_JPEGProcess14SV1TransferSyntax,
    UID_JPEGProcess14TransferSyntax,
    UID_JPEGLSLosslessTransferSyntax,
    UID_JPEG2000LosslessOnlyTransferSyntax,
    UID_RLELosslessTransferSyntax,
    UID_JPEGProcess1TransferSyntax,
    UID_JPEGProcess2_4TransferSyntax,
    UID_JPEGLSLossyTransferSyntax,
    UID_JPEG2000TransferSyntax,
};

struct syntaxes {
    const char *uids[sizeof kAllSyntaxes / sizeof kAllSyntaxes[0]];
    int n = 0;
    syntaxes() {
        for (const char *u : kAllSyntaxes)
            if (ts_decodable(u)) uids[n++] = u;
    }
};
const syntaxes &decodable() {
    static const syntaxes s;
    return s;
}

}  // namespace

extern "C" int net_image_sop_class_count(void) { return kNumImageClasses; }
extern "C" const char *net_image_sop_class(int i) { return i >= 0 && i < kNumImageClasses ? kImageClasses[i] : ""; }
extern "C" int net_other_sop_class_count(void) { return kNumOtherClasses; }
extern "C" const char *net_other_sop_class(int i) { return i >= 0 && i < kNumOtherClasses ? kOtherClasses[i] : ""; }
extern "C" int net_is_image_sop_class(const char *uid) {
    for (const char *c : kImageClasses)
        if (!strcmp(c, uid)) return 1;
    return 0;
}
extern "C" int net_transfer_syntax_count(void) { return decodable().n; }
extern "C" const char *net_transfer_syntax(int i) { return i >= 0 && i < decodable().n ? decodable().uids[i] : ""; }

struct assoc_thread {
    std::thread t;
    std::atomic<bool> done{false};
};

struct net_scp {
    net_scp_params p{};
    std::string aet, bind, allow, tmp_dir;
    T_ASC_Network *net = nullptr;
    DcmTransportLayer *tls = nullptr;
    std::list<std::unique_ptr<assoc_thread>> threads;
    std::atomic<int> active{0};
    std::atomic<unsigned long> seq{0};
    std::atomic<unsigned long> assoc_seq{0};
    std::atomic<bool> stop{false};
};

namespace {

bool stopping(net_scp *s) { return s->stop.load() || (s->p.should_stop && s->p.should_stop(s->p.user)); }

void logf(net_scp *s, const char *event, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void logf(net_scp *s, const char *event, const char *subject, const char *fmt, ...) {
    if (!s->p.log) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->p.log(s->p.user, event, subject, msg);
}

// A listening socket on bind:port that DCMTK's acceptor uses instead of its own, which would
// listen on every interface (DCMTK 3.6.7 has no bind address).
int listen_socket(const char *bind_addr, int port, aac_error *err) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return aac_fail(err, AAC_ERR_IO, "socket: %s", strerror(errno)), -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (!bind_addr || !bind_addr[0]) {
        a.sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1) {
        close(fd);
        return aac_fail(err, AAC_ERR_ARG, "'%s' is not an IPv4 address to listen on", bind_addr), -1;
    }
    if (::bind(fd, (sockaddr *)&a, sizeof a) || listen(fd, 64)) {
        const int e = errno;
        close(fd);
        return aac_fail(err, AAC_ERR_IO, "cannot listen on %s:%d: %s", bind_addr && bind_addr[0] ? bind_addr : "*",
                        port, strerror(e)),
               -1;
    }
    return fd;
}

// DcmTransportConnection::getSocket is protected; named through a subclass, its pointer is not.
struct socket_peek : DcmTransportConnection {
    using DcmTransportConnection::getSocket;
};
DcmNativeSocketType (DcmTransportConnection::*socket_of())() { return &socket_peek::getSocket; }

}  // namespace

// Small PDUs (a command, a response) must leave at once: with Nagle's algorithm each C-STORE
// waits for the peer's delayed ACK (about 40 ms on Linux). DCMTK only turns it off when the
// process environment says TCP_NODELAY=1.
extern "C" void net_nodelay(T_ASC_Association *assoc) {
    if (DcmTransportConnection *tc = DUL_getTransportConnection(assoc->DULassociation)) {
        int one = 1;
        setsockopt((tc->*socket_of())(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

namespace {

// The C-STORE response waits for the instance's flush, and a synchronous sender waits for the
// response: started while the rest of the dataset still arrives, the writeback is mostly done
// by its end and the flush waits for little more than the device's cache flush.
constexpr unsigned long kWritebackStep = 128 * 1024;

// The file's bytes go through stdio as DCMTK's own file stream does; the CRC-32 of everything
// after the preamble is taken on the way, for the receive record (rcvpool.c).
struct crc_consumer : DcmFileConsumer {
    explicit crc_consumer(FILE *f) : DcmFileConsumer(f) {}
    offile_off_t write(const void *buf, offile_off_t n) override {
        const offile_off_t w = DcmFileConsumer::write(buf, n);
        if (w > 0) {
            const char *b = (const char *)buf;
            const offile_off_t skip = pos < 128 ? OFstatic_cast(offile_off_t, 128) - pos : 0;
            if (w > skip) crc = net_rcv_crc(crc, b + skip, (size_t)(w - skip));
            pos += w;
        }
        return w;
    }
    uint32_t crc = net_rcv_crc(0, nullptr, 0);
    offile_off_t pos = 0;
};

struct crc_stream : DcmOutputStream {
    explicit crc_stream(crc_consumer *c) : DcmOutputStream(c) {}
};

// The File Meta Information a received file starts with: what DCMTK's DIMSE_createFilestream
// writes (preamble, "DICM", group 0002 from the request and the presentation context).
OFCondition write_meta(DcmOutputStream &out, const T_DIMSE_C_StoreRQ *req, T_ASC_Association *assoc,
                       const char *ts_uid) {
    DcmMetaInfo mi;
    const Uint8 version[2] = {0, 1};
    OFCondition c = mi.putAndInsertUint32(DCM_FileMetaInformationGroupLength, 0);
    if (c.good()) c = mi.putAndInsertUint8Array(DCM_FileMetaInformationVersion, version, 2);
    if (c.good()) c = mi.putAndInsertString(DCM_MediaStorageSOPClassUID, req->AffectedSOPClassUID);
    if (c.good()) c = mi.putAndInsertString(DCM_MediaStorageSOPInstanceUID, req->AffectedSOPInstanceUID);
    if (c.good()) c = mi.putAndInsertString(DCM_TransferSyntaxUID, ts_uid);
    if (c.good()) c = mi.putAndInsertString(DCM_ImplementationClassUID, OFFIS_IMPLEMENTATION_CLASS_UID);
    if (c.good()) c = mi.putAndInsertString(DCM_ImplementationVersionName, OFFIS_DTK_IMPLEMENTATION_VERSION_NAME2);
    if (c.good()) c = mi.putAndInsertString(DCM_SourceApplicationEntityTitle, assoc->params->DULparams.callingAPTitle);
    if (c.good())
        c = mi.computeGroupLengthAndPadding(EGL_withGL, EPD_noChange, META_HEADER_DEFAULT_TRANSFERSYNTAX,
                                            EET_UndefinedLength);
    if (c.good()) {
        mi.transferInit();
        c = mi.write(out, META_HEADER_DEFAULT_TRANSFERSYNTAX, EET_ExplicitLength, nullptr);
        mi.transferEnd();
    }
    return c;
}

net_pad_form pad_form(const char *ts_uid) {
    DcmXfer x(ts_uid);
    if (x.getStreamCompression() != ESC_none) return NET_PAD_NONE;  // deflated: nothing after the stream
    if (x.isImplicitVR()) return NET_PAD_IMPLICIT_LE;
    return x.isBigEndian() ? NET_PAD_EXPLICIT_BE : NET_PAD_EXPLICIT_LE;
}

struct rcv_ctx {
    net_scp *s;
    T_ASC_Association *assoc;
    int fd;
    bool too_large = false;
    unsigned long flushed = 0;
};

void on_progress(void *data, unsigned long bytes) {
    rcv_ctx *c = (rcv_ctx *)data;
    if (c->too_large) return;
    if (c->s->p.max_instance_bytes > 0 && (int64_t)bytes > c->s->p.max_instance_bytes) {
        // No way to refuse in the middle of a dataset: end the connection, the receive fails
        // and the partial file is removed.
        c->too_large = true;
        if (DcmTransportConnection *tc = DUL_getTransportConnection(c->assoc->DULassociation))
            shutdown((tc->*socket_of())(), SHUT_RDWR);
        return;
    }
    if (bytes - c->flushed >= kWritebackStep) {
        fs_start_writeback(c->fd);
        c->flushed = bytes;
    }
}

DcmDataset *comment_detail(const char *comment) {
    if (!comment || !comment[0]) return nullptr;
    DcmDataset *d = new DcmDataset;
    char lo[65];
    snprintf(lo, sizeof lo, "%s", comment);  // ErrorComment is an LO: 64 characters
    d->putAndInsertString(DCM_ErrorComment, lo);
    return d;
}

// One C-STORE: the dataset received into a file (a pool file when one is ready, else a new
// one), bit for bit after the File Meta Information, then sealed with its receive record and
// handed to the store handler, whose status is the response's. Returns the network condition;
// *status: what was answered (-1: nothing), *too_large: the association must be aborted.
OFCondition receive_instance(net_scp *s, T_ASC_Association *assoc, T_ASC_PresentationContextID pres,
                             T_DIMSE_C_StoreRQ *req, int *status, bool *too_large) {
    *status = -1, *too_large = false;
    T_DIMSE_C_StoreRSP rsp{};
    char comment[512] = "";
    const int refuse = s->p.admit ? s->p.admit(s->p.user) : 0;
    T_ASC_PresentationContext pc;
    OFCondition c = ASC_findAcceptedPresentationContext(assoc->params, pres, &pc);
    if (c.bad()) return c;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/%ld-%lu%s", s->tmp_dir.c_str(), (long)getpid(), s->seq.fetch_add(1),
             NET_PART_SUFFIX);
    int64_t pool_size = 0;
    int fd = refuse ? -1 : net_pool_take(s->p.pool, tmp, &pool_size);
    if (!refuse && fd < 0) fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : nullptr;
    if (fd >= 0 && !f) close(fd);
    if (!f) {
        // Refused before receiving (disk nearly full) or no file to receive into: the data is
        // read and dropped, the sender is told "out of resources".
        DIC_UL bytes = 0, pdvs = 0;
        c = DIMSE_ignoreDataSet(assoc, DIMSE_BLOCKING, 0, &bytes, &pdvs);
        if (c.bad()) return c;
        if (!refuse) unlink(tmp);
        rsp.DimseStatus = (Uint16)(refuse ? refuse : NET_STATUS_OUT_OF_RESOURCES);
        snprintf(comment, sizeof comment, "%s",
                 refuse ? "out of resources: the spool's disk is nearly full" : "cannot create the file to receive into");
    } else {
        int64_t length = 0, padding = 0;
        bool sealed = false;
        {
            crc_consumer consumer(f);  // owns f from here: closed when it goes
            crc_stream out(&consumer);
            rcv_ctx ctx{s, assoc, fd};
            T_ASC_PresentationContextID data_pres = 0;
            c = write_meta(out, req, assoc, pc.acceptedTransferSyntax);
            if (c.good()) {
                c = DIMSE_receiveDataSetInFile(assoc, DIMSE_BLOCKING, 0, &data_pres, &out, on_progress, &ctx);
            } else {
                DIC_UL bytes = 0, pdvs = 0;
                OFCondition ig = DIMSE_ignoreDataSet(assoc, DIMSE_BLOCKING, 0, &bytes, &pdvs);
                c = ig.good() ? DIMSE_OUTOFRESOURCES : ig;
            }
            if (c.good() && data_pres != pres)
                c = makeDcmnetCondition(DIMSEC_INVALIDPRESENTATIONCONTEXTID, OF_error,
                                        "DIMSE: Presentation Contexts of Command and Data Differ");
            // The limit can be passed by the last PDV: the connection is shut, the data is not kept.
            *too_large = ctx.too_large;
            if (c.good() && ctx.too_large) c = DIMSE_RECEIVEFAILED;
            length = (int64_t)consumer.pos;
            if (c.good()) {
                const uint32_t asked = net_rcv_request_crc(req->AffectedSOPClassUID, req->AffectedSOPInstanceUID);
                padding = !consumer.good() || fflush(f) ? -1
                          : s->p.seal ? net_rcv_seal(fd, pool_size, length, consumer.crc, asked,
                                                     pad_form(pc.acceptedTransferSyntax))
                                      : 0;
                sealed = padding >= 0;
                if (!sealed) c = DIMSE_OUTOFRESOURCES;
            }
        }
        if (!sealed) {
            unlink(tmp);
            if (c != DIMSE_OUTOFRESOURCES) return c;  // the association ends
            rsp.DimseStatus = NET_STATUS_OUT_OF_RESOURCES;
            snprintf(comment, sizeof comment, "cannot write the received file: %s", strerror(errno));
        } else {
            net_pool_note(s->p.pool, length);
            rsp.DimseStatus = (Uint16)s->p.store(s->p.user, tmp, length, padding, req->AffectedSOPClassUID,
                                                 req->AffectedSOPInstanceUID, comment, sizeof comment);
        }
    }
    DcmDataset *detail = rsp.DimseStatus != STATUS_Success ? comment_detail(comment) : nullptr;
    c = DIMSE_sendStoreResponse(assoc, pres, req, &rsp, detail);
    delete detail;
    *status = rsp.DimseStatus;
    return c;
}

void serve_association(net_scp *s, T_ASC_Association *assoc, std::string who) {
    unsigned long stored = 0, refused = 0;
    int idle = 0;
    const char *end = "released";
    for (;;) {
        T_DIMSE_Message msg;
        T_ASC_PresentationContextID pres;
        DcmDataset *detail = nullptr;
        OFCondition c = DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, 1, &pres, &msg, &detail);
        delete detail;
        if (c == DIMSE_NODATAAVAILABLE) {
            if (stopping(s) || ++idle > s->p.timeout_s) {
                end = idle > s->p.timeout_s ? "aborted (idle timeout)" : "aborted (node stopping)";
                ASC_abortAssociation(assoc);
                break;
            }
            continue;
        }
        idle = 0;
        if (c == DUL_PEERREQUESTEDRELEASE) {
            ASC_acknowledgeRelease(assoc);
            break;
        }
        if (c == DUL_PEERABORTEDASSOCIATION) {
            end = "aborted by the peer";
            break;
        }
        if (c.bad()) {
            end = "aborted (network error)";
            logf(s, "error", who.c_str(), "receiving a command: %s", c.text());
            ASC_abortAssociation(assoc);
            break;
        }
        if (msg.CommandField == DIMSE_C_ECHO_RQ) {
            c = DIMSE_sendEchoResponse(assoc, pres, &msg.msg.CEchoRQ, STATUS_Success, nullptr);
        } else if (msg.CommandField == DIMSE_C_STORE_RQ) {
            T_DIMSE_C_StoreRQ *req = &msg.msg.CStoreRQ;
            int status;
            bool too_large;
            c = receive_instance(s, assoc, pres, req, &status, &too_large);
            if (too_large) {
                logf(s, "error", who.c_str(), "instance %s larger than the limit of %lld bytes: association aborted",
                     req->AffectedSOPInstanceUID, (long long)s->p.max_instance_bytes);
                refused++;
                end = "aborted (instance too large)";
                ASC_abortAssociation(assoc);
                break;
            }
            if (c.good() && status == STATUS_Success) stored++;
            else if (c.good()) refused++;
        } else {
            logf(s, "error", who.c_str(), "unsupported command 0x%x: association aborted", (unsigned)msg.CommandField);
            end = "aborted (unsupported command)";
            ASC_abortAssociation(assoc);
            break;
        }
        if (c.bad()) {
            end = "aborted (network error)";
            logf(s, "error", who.c_str(), "answering: %s", c.text());
            ASC_abortAssociation(assoc);
            break;
        }
    }
    logf(s, "association", who.c_str(), "%s: %lu instance(s) stored, %lu refused", end, stored, refused);
    ASC_dropSCPAssociation(assoc);
    ASC_destroyAssociation(&assoc);
}

void reject(T_ASC_Association *assoc, T_ASC_RejectParametersResult result, T_ASC_RejectParametersReason reason) {
    T_ASC_RejectParameters rej = {result,
                                  reason == ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED
                                      ? ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED
                                      : ASC_SOURCE_SERVICEUSER,
                                  reason};
    ASC_rejectAssociation(assoc, &rej);
    ASC_dropAssociation(assoc);
    ASC_destroyAssociation(&assoc);
}

void reap(net_scp *s, bool all) {
    for (auto it = s->threads.begin(); it != s->threads.end();) {
        if (all || (*it)->done) {
            (*it)->t.join();
            it = s->threads.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace

extern "C" aac_status net_scp_open(const net_scp_params *p, net_scp **out, aac_error *err) {
    *out = nullptr;
    dcm_init();
    net_scp *s = new net_scp;
    s->p = *p;
    s->aet = p->aet ? p->aet : "AACLIP";
    s->bind = p->bind ? p->bind : "";
    s->allow = p->allow ? p->allow : "";
    s->tmp_dir = p->tmp_dir ? p->tmp_dir : ".";
    if (s->p.timeout_s <= 0) s->p.timeout_s = 30;
    if (s->p.max_pdu <= 0) s->p.max_pdu = 131072;
    if (s->p.max_associations <= 0) s->p.max_associations = 16;
    int fd = listen_socket(s->bind.c_str(), p->port, err);
    if (fd < 0) return delete s, err ? err->code : AAC_ERR_IO;
    // A requestor network (no listening socket of its own) turned acceptor on our socket;
    // DCMTK closes it when the network is dropped.
    OFCondition c = ASC_initializeNetwork(NET_REQUESTOR, 0, s->p.timeout_s, &s->net);
    if (c.bad()) {
        close(fd);
        delete s;
        return aac_fail(err, AAC_ERR_IO, "DICOM network set-up: %s", c.text());
    }
    PRIVATE_NETWORKKEY *key = (PRIVATE_NETWORKKEY *)s->net->network;
    key->applicationFunction |= DICOM_APPLICATION_ACCEPTOR;
    key->networkSpecific.TCP.listenSocket = fd;
    key->networkSpecific.TCP.port = p->port;
    s->net->role = NET_ACCEPTOR;
    s->net->acceptorPort = p->port;
    if (net_tls_wanted(&p->tls)) {
        s->tls = net_tls_layer(&p->tls, NET_ACCEPTOR, err);
        if (!s->tls || ASC_setTransportLayer(s->net, s->tls, 0).bad()) {
            const bool had = s->tls != nullptr;
            net_scp_free(s);
            return had ? aac_fail(err, AAC_ERR_IO, "TLS set-up failed") : (err ? err->code : AAC_ERR_IO);
        }
    }
    *out = s;
    return AAC_OK;
}

extern "C" void net_scp_serve(net_scp *s) {
    const syntaxes &ts = decodable();
    const char *verification[] = {UID_VerificationSOPClass};
    while (!stopping(s)) {
        reap(s, false);
        T_ASC_Association *assoc = nullptr;
        OFCondition c = ASC_receiveAssociation(s->net, &assoc, s->p.max_pdu, nullptr, nullptr,
                                               s->tls ? OFTrue : OFFalse, DUL_NOBLOCK, 1);
        if (c == DUL_NOASSOCIATIONREQUEST) {
            if (assoc) ASC_destroyAssociation(&assoc);
            continue;
        }
        if (c.bad()) {
            logf(s, "refused", "", "association request failed: %s", c.text());
            if (assoc) {
                ASC_dropAssociation(assoc);
                ASC_destroyAssociation(&assoc);
            }
            continue;
        }
        const std::string calling = net_trim(assoc->params->DULparams.callingAPTitle);
        const std::string called = net_trim(assoc->params->DULparams.calledAPTitle);
        std::string host = assoc->params->DULparams.callingPresentationAddress;
        const size_t colon = host.rfind(':');
        if (colon != std::string::npos && host.find(':') == colon) host.resize(colon);  // "ip:port"
        // The allow list may name the numeric address too (DCMTK reports the resolved name).
        char ip[INET6_ADDRSTRLEN] = "";
        if (DcmTransportConnection *tc = DUL_getTransportConnection(assoc->DULassociation)) {
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            if (getpeername((tc->*socket_of())(), (sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET)
                inet_ntop(AF_INET, &((sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
        }
        char who[400];
        snprintf(who, sizeof who, "%s@%s #%lu", calling.c_str(), host.c_str(), s->assoc_seq.fetch_add(1) + 1);
        if (called != s->aet) {
            logf(s, "refused", who, "called AE title '%s' is not ours ('%s')", called.c_str(), s->aet.c_str());
            reject(assoc, ASC_RESULT_REJECTEDPERMANENT, ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED);
            continue;
        }
        if (!net_allow_match(s->allow.c_str(), calling.c_str(), host.c_str()) &&
            !(ip[0] && net_allow_match(s->allow.c_str(), calling.c_str(), ip))) {
            logf(s, "refused", who, "calling AE title '%s' from %s is not on the allow list", calling.c_str(),
                 host.c_str());
            reject(assoc, ASC_RESULT_REJECTEDPERMANENT, ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED);
            continue;
        }
        if (s->active.load() >= s->p.max_associations) {
            logf(s, "refused", who, "%d associations open already (the limit)", s->active.load());
            reject(assoc, ASC_RESULT_REJECTEDTRANSIENT, ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
            continue;
        }
        c = ASC_acceptContextsWithPreferredTransferSyntaxes(assoc->params, verification, 1,
                                                            const_cast<const char **>(ts.uids), ts.n);
        if (c.good())
            c = ASC_acceptContextsWithPreferredTransferSyntaxes(
                assoc->params, const_cast<const char **>(kImageClasses), kNumImageClasses,
                const_cast<const char **>(ts.uids), ts.n);
        if (c.good() && s->p.accept_other)
            c = ASC_acceptContextsWithPreferredTransferSyntaxes(
                assoc->params, const_cast<const char **>(kOtherClasses), kNumOtherClasses,
                const_cast<const char **>(ts.uids), ts.n);
        if (c.good()) c = ASC_acknowledgeAssociation(assoc);
        if (c.bad()) {
            logf(s, "refused", who, "negotiation failed: %s", c.text());
            ASC_dropAssociation(assoc);
            ASC_destroyAssociation(&assoc);
            continue;
        }
        net_nodelay(assoc);
        const int accepted = ASC_countAcceptedPresentationContexts(assoc->params);
        const int proposed = ASC_countPresentationContexts(assoc->params);
        logf(s, "association", who, "accepted: %d of %d presentation contexts%s", accepted, proposed,
             accepted < proposed ? " (other SOP classes or transfer syntaxes refused)" : "");
        s->active++;
        auto th = std::make_unique<assoc_thread>();
        assoc_thread *raw = th.get();
        std::string w = who;
        raw->t = std::thread([s, assoc, w, raw] {
            serve_association(s, assoc, w);
            s->active--;
            raw->done = true;
        });
        s->threads.push_back(std::move(th));
    }
    reap(s, true);
}

extern "C" void net_scp_stop(net_scp *s) { s->stop = true; }

extern "C" int net_scp_active(net_scp *s) { return s->active.load(); }

extern "C" void net_scp_free(net_scp *s) {
    if (!s) return;
    reap(s, true);
    if (s->net) ASC_dropNetwork(&s->net);
    delete s->tls;
    delete s;
}
