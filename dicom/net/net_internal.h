/* net_internal.h - what the files of dicom/net share (internal): the acceptor (scp.cpp), the
 * instance check and store (instance.c, instance_read.cpp), the spool and its jobs (spool.c,
 * job.c), the worker (worker.c) and the node (node.c). */
#ifndef AAC_NET_INTERNAL_H
#define AAC_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aaclip_dicom.h"
#include "aaclip_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DIMSE status codes we answer with (PS3.4 Annex B / PS3.7 Annex C). */
enum {
    NET_STATUS_SUCCESS = 0x0000,
    NET_STATUS_OUT_OF_RESOURCES = 0xA700,
    NET_STATUS_SOP_CLASS_MISMATCH = 0xA900, /* dataset does not match SOP class */
    NET_STATUS_CANNOT_UNDERSTAND = 0xC000
};

/* ---- names.c */
/* 1 when a caller (calling AE title, peer host) is on the allow list "AE[@host],..." (NULL or
 * empty: anyone). */
int net_allow_match(const char *allow, const char *calling_aet, const char *peer_host);
/* Checks an allow list's syntax; AAC_ERR_ARG naming the bad entry. */
aac_status net_allow_check(const char *allow, aac_error *err);
/* Seconds since an arbitrary start, monotonic. */
double net_now(void);
/* "2026-12-03T07:59:21Z" (UTC). */
void net_utc(char out[32]);

/* ---- the SOP classes and transfer syntaxes a node accepts (scp.cpp) */
/* Image storage SOP classes the ingestion reads. */
int net_image_sop_class_count(void);
const char *net_image_sop_class(int i);
int net_is_image_sop_class(const char *uid);
/* Other storage SOP classes a study holds (SEG, Parametric Map, SR, KO, PR, PDF, RT structure
 * sets, ...): accepted by a pull, never by a node. */
int net_other_sop_class_count(void);
const char *net_other_sop_class(int i);
/* Transfer syntaxes the ingestion decodes, uncompressed first. */
int net_transfer_syntax_count(void);
const char *net_transfer_syntax(int i);

/* ---- one received instance (instance.c, instance_read.cpp) */
typedef struct net_instance {
    char sop_class[AAC_UID_LEN], sop_uid[AAC_UID_LEN];
    char study_uid[AAC_UID_LEN], series_uid[AAC_UID_LEN];
    char patient_id[AAC_LO_LEN];
    char ts_uid[AAC_UID_LEN];
} net_instance;

/* The identifying attributes of a DICOM file (values of large elements not loaded).
 * AAC_ERR_FORMAT naming the file when it cannot be parsed. */
aac_status net_instance_read(const char *path, net_instance *out, aac_error *err);
/* Everything a node checks before an instance enters a tree: parsable, UIDs valid (they become
 * file names), the SOP Instance UID the one the C-STORE named (expect_sop, may be NULL), an
 * image the ingestion reads (header, pixel data length, transfer syntax). With other_classes,
 * an object of another SOP class (a pull keeping a study's SEG or SR) needs only the first
 * three. */
aac_status net_instance_check(const char *path, const char *expect_sop, int other_classes, net_instance *out,
                              aac_error *err);
/* root/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm */
void net_instance_path(const char *root, const net_instance *in, char *out, size_t cap);
/* Moves the received file tmp to its place under root (temp + fsync + rename via fs_commit;
 * new folders synced into their parents); a file of the same SOP Instance UID is replaced.
 * sync_folder 0: the series folder is not synced after the rename (one disk flush per
 * instance instead of two); the caller finishes a tmp file a crash left (spool_open) and syncs
 * the folder before a job reads it. flushed: the caller has fsynced tmp already (only with
 * sync_folder 0). */
aac_status net_instance_commit(const char *tmp, const char *root, const net_instance *in, int sync_folder,
                               int flushed, aac_error *err);

/* ---- the acceptor (scp.cpp) */
/* Names in the spool's tmp/: an instance is received into <n>.part and renamed <n>.rcv once its
 * dataset is complete, before its checks and flush. */
#define NET_PART_SUFFIX ".part"
#define NET_DONE_SUFFIX ".rcv"

typedef struct net_scp net_scp;

typedef struct net_scp_params {
    const char *aet, *bind;
    int port, max_associations, max_pdu, timeout_s;
    const char *allow;           /* see net_allow_match */
    aac_net_tls tls;
    const char *tmp_dir;         /* instances are received into files here */
    int accept_other;            /* also accept net_other_sop_class (a pull's C-MOVE SCP) */
    int64_t max_instance_bytes;
    /* Before an instance is received: 0 to receive it, else the status to refuse it with
     * (its data is read and dropped). May be NULL. */
    int (*admit)(void *user);
    /* A received instance (file tmp, complete): returns the DIMSE status to answer with and
     * takes the file (commits it or removes it); comment (cap bytes): why, on failure. */
    int (*store)(void *user, const char *tmp, const char *sop_class, const char *sop_uid, char *comment,
                 size_t cap);
    int (*should_stop)(void *user);
    void (*log)(void *user, const char *event, const char *subject, const char *message);
    void *user;
} net_scp_params;

/* Binds the port (and sets up TLS). */
aac_status net_scp_open(const net_scp_params *p, net_scp **out, aac_error *err);
/* Accepts associations until should_stop, each on its own thread; returns when all have ended
 * (those in flight answer the message in work, then are aborted). */
void net_scp_serve(net_scp *s);
/* Makes net_scp_serve return (also when should_stop is NULL); thread-safe. */
void net_scp_stop(net_scp *s);
/* Number of associations open now. */
int net_scp_active(net_scp *s);
void net_scp_free(net_scp *s);

/* Thread-safe log line through a node's or a client's callback. */
typedef void (*net_log_fn)(void *user, const char *event, const char *subject, const char *message);
void net_logf(net_log_fn fn, void *user, const char *event, const char *subject, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* DCMTK set-up once per process (decoders, quiet logger). */
void net_dcmtk_init(void);

#ifdef __cplusplus
}
#endif
#endif
