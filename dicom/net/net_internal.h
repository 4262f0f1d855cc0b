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
    /* Bytes the dataset's last element takes when it is Data Set Trailing Padding (FFFC,FFFC),
     * header included; 0 without. A sealed pool file's padding must take exactly the bytes
     * after the received data: a dataset cut short would swallow its header. */
    int64_t trailing_padding;
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

/* ---- receiving (rcvpool.c): the receive record and the pool of files written ahead of time */
/* How the rest of a pool file becomes Data Set Trailing Padding (FFFC,FFFC), by the dataset's
 * transfer syntax; NONE (deflated): the file is cut to the data instead. */
typedef enum { NET_PAD_NONE, NET_PAD_IMPLICIT_LE, NET_PAD_EXPLICIT_LE, NET_PAD_EXPLICIT_BE } net_pad_form;
/* zlib's CRC-32 of n bytes, continued from crc (start: net_rcv_crc(0, NULL, 0)). */
uint32_t net_rcv_crc(uint32_t crc, const void *data, size_t n);
/* The CRC-32 of what a C-STORE named: SOP Class UID, a NUL, SOP Instance UID. */
uint32_t net_rcv_request_crc(const char *sop_class, const char *sop_uid);
/* Ends a received file of file_size bytes whose DICOM content is its first length bytes (crc:
 * of those after the 128-byte preamble): the rest becomes padding (or is cut off), then the
 * preamble takes the receive record (with request: net_rcv_request_crc of the C-STORE, so a
 * restart refuses what the node refused for not being what the C-STORE named). Not flushed.
 * Returns the padding's bytes (0: none), or -1 with errno. */
int64_t net_rcv_seal(int fd, int64_t file_size, int64_t length, uint32_t crc, uint32_t request, net_pad_form pad);
/* The DICOM content's length when path holds a receive record that checks (the CRC over the
 * file's bytes; *request: the C-STORE's, may be NULL); -1 when it holds none or one that does
 * not check; -2 when it cannot be read (an I/O error, out of memory: keep the file). Symbolic
 * links are not followed. */
int64_t net_rcv_record(const char *path, uint32_t *request);

#define NET_POOL_SUFFIX ".free"
typedef struct net_pool net_pool;
typedef struct net_pool_info {
    int files;
    int64_t bytes, slot;
    unsigned long taken, missed;
} net_pool_info;
/* A pool of at most budget bytes of files in dir (the spool's tmp/), those a previous run
 * left included; budget 0: *out NULL, no pool (every function takes NULL). Never fills the
 * disk below min_free. */
aac_status net_pool_open(const char *dir, int64_t budget, int64_t min_free, net_pool **out, aac_error *err);
void net_pool_free(net_pool *p);
/* Renames a ready file to path and opens it for writing (not truncated); returns the fd and
 * its size, or -1 when none is ready. Thread-safe. */
int net_pool_take(net_pool *p, const char *path, int64_t *size);
/* A received instance's size: the files made next fit the largest of the recent ones. */
void net_pool_note(net_pool *p, int64_t bytes);
/* Makes files (zeros, flushed, their folder synced) until the budget is reached, busy(user)
 * says 1 or the disk is short; returns how many. Below min_free free on the disk it removes
 * ready files instead. One caller at a time. */
int net_pool_fill(net_pool *p, int (*busy)(void *), void *user);
void net_pool_stats(net_pool *p, net_pool_info *out);
/* Removes ready files while the disk has less than min_free free. Thread-safe. */
void net_pool_give_back(net_pool *p);

/* ---- the acceptor (scp.cpp) */
/* Names in the spool's tmp/: an instance is received into <n>.part (a pool file renamed, or a
 * new file); its receive record says when it is complete. <n>.rcv: a complete file of a node
 * before the receive record (read by a restart on its spool). */
#define NET_PART_SUFFIX ".part"
#define NET_DONE_SUFFIX ".rcv"

typedef struct net_scp net_scp;

typedef struct net_scp_params {
    const char *aet, *bind;
    int port, max_associations, max_pdu, timeout_s;
    const char *allow;           /* see net_allow_match */
    aac_net_tls tls;
    const char *tmp_dir;         /* instances are received into files here */
    net_pool *pool;              /* files of tmp_dir written ahead of time, or NULL */
    int seal;                    /* write the receive record (a node's spool; a pull's files
                                    keep a zero preamble) */
    int accept_other;            /* also accept net_other_sop_class (a pull's C-MOVE SCP) */
    int64_t max_instance_bytes;
    /* Before an instance is received: 0 to receive it, else the status to refuse it with
     * (its data is read and dropped). May be NULL. */
    int (*admit)(void *user);
    /* A received instance (file tmp, sealed with its receive record, not flushed; its DICOM
     * content is the first length bytes, followed by padding bytes of padding to cut once the
     * data is durable): returns the DIMSE status to answer with and takes the file (commits it
     * or removes it); comment (cap bytes): why, on failure. */
    int (*store)(void *user, const char *tmp, int64_t length, int64_t padding, const char *sop_class,
                 const char *sop_uid, char *comment, size_t cap);
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
