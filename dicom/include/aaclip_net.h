/* aaclip_net.h - aaclip on the DICOM network (DCMTK dcmnet, optional TLS through dcmtls):
 * a node that receives studies (C-STORE SCP), scores them with the shared pipeline
 * (aaclip_score.h) and sends the results on (C-STORE SCU); and the client side of pulling a
 * study from a PACS (C-FIND, then C-GET or C-MOVE) and pushing results to one.
 *
 *   aac_node_params p = aac_node_default_params();
 *   p.aet = "AACLIP"; p.port = 11112; p.spool = "/var/spool/aaclip";
 *   p.open_scorer = my_open; p.user = ctx;            // called once, on the worker thread
 *   aac_node *n;
 *   if (aac_node_open(&p, &n, &err)) ...              // recovers the spool, binds the port
 *   aac_node_run(n, &err);                            // until aac_node_stop (signal-safe)
 *   aac_node_free(n);
 *
 * Same conventions as aaclip.h: every call returns an aac_status and fills the aac_error passed
 * in (may be NULL); nothing prints (the node reports through its log callback); no global
 * mutable state beyond DCMTK's own one-time set-up. */
#ifndef AACLIP_NET_H
#define AACLIP_NET_H

#include <stdint.h>

#include "aaclip.h"
#include "aaclip_score.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AAC_AET_LEN 17 /* AE title: 16 characters + NUL */

/* ---------------------------------------------------------------- names */
/* A DICOM peer: "AE@host:port". */
typedef struct aac_net_peer {
    char aet[AAC_AET_LEN];
    char host[256];
    int port;
} aac_net_peer;

/* "AE@host:port" -> peer; AAC_ERR_ARG naming what is wrong. */
aac_status aac_net_peer_parse(const char *s, aac_net_peer *out, aac_error *err);
/* 1 when s is a valid AE title: 1-16 characters of printable ASCII without backslash, not all
 * spaces. */
int aac_net_aet_valid(const char *s);
/* 1 when s is a valid UID: 1-64 characters of digits and dots, no empty component, no leading
 * zero in a component (DICOM PS3.5 9.1). Only such UIDs become file names. */
int aac_net_uid_valid(const char *s);

/* TLS (DCMTK dcmtls + OpenSSL): all NULL = plain TCP. key + cert: ours (PEM); ca: a PEM
 * certificate or folder of them that the peer's certificate must chain to (then a peer
 * without a valid certificate is refused); without ca the peer is not verified. */
typedef struct aac_net_tls {
    const char *key, *cert, *ca;
} aac_net_tls;

/* ---------------------------------------------------------------- client side */
typedef struct aac_net_scu_params {
    const char *aet;      /* our AE title (default "AACLIP") */
    aac_net_peer peer;
    int timeout_s;        /* connect, association and each message (default 30) */
    int max_pdu;          /* largest PDU we receive (default 131072) */
    aac_net_tls tls;
    const char *bind;     /* C-MOVE: the address our store SCP listens on (NULL: all) */
    /* One line per association and per object, may be NULL. */
    void (*log)(void *user, const char *event, const char *subject, const char *message);
    void *user;
} aac_net_scu_params;

aac_net_scu_params aac_net_scu_default_params(void);

/* C-ECHO. */
aac_status aac_net_echo(const aac_net_scu_params *p, aac_error *err);

/* What happened to one file sent. */
typedef enum aac_net_sent {
    AAC_SENT_OK = 0,        /* acknowledged (success or warning status) */
    AAC_SENT_SKIPPED = 1,   /* already in the ledger: acknowledged before */
    AAC_SENT_REFUSED = 2,   /* the peer answered with a failure status, or refused its SOP class */
    AAC_SENT_UNREADABLE = 3,/* not a DICOM file we can send */
    AAC_SENT_NOT_SENT = 4   /* the association failed before it was sent: try again later */
} aac_net_sent;

/* SOP Instance UIDs a peer has acknowledged, kept in a JSON file rewritten atomically after
 * every acknowledgement: a sender that stops at any moment sends nothing twice that was
 * acknowledged. */
typedef struct aac_ledger aac_ledger;
/* Opens (or starts) the ledger file at path. */
aac_status aac_ledger_open(const char *path, aac_ledger **out, aac_error *err);
int aac_ledger_has(const aac_ledger *l, const char *sop_uid);
aac_status aac_ledger_add(aac_ledger *l, const char *sop_uid, aac_error *err);
int aac_ledger_count(const aac_ledger *l);
void aac_ledger_free(aac_ledger *l);

/* C-STORE of files over one association (contexts for their SOP classes and transfer
 * syntaxes); files whose SOP Instance UID is in `ledger` (may be NULL) are skipped, each
 * acknowledged one is added to it at once. outcome[i] (may be NULL) says what happened to
 * files[i]. Fails (AAC_ERR_IO) when the association cannot be made or breaks: the files not
 * yet sent are AAC_SENT_NOT_SENT; a refused object is not an error of the call. */
aac_status aac_net_store_files(const aac_net_scu_params *p, const char *const *files, int n, aac_ledger *ledger,
                               aac_net_sent *outcome, aac_error *err);

/* C-FIND at study level (Study Root). Empty fields match anything; study_date is a DICOM
 * range "YYYYMMDD-YYYYMMDD" (either side may be empty). */
typedef struct aac_net_query {
    const char *study_uid, *patient_id, *accession, *modality, *study_date;
} aac_net_query;

typedef struct aac_net_study {
    char study_uid[65];
    char patient_id[65];
    char patient_name[65];
    char accession[17];
    char study_date[9];
    char modalities[65];
    char description[65];
    int n_instances;          /* NumberOfStudyRelatedInstances, -1 when not returned */
} aac_net_study;

aac_status aac_net_find_studies(const aac_net_scu_params *p, const aac_net_query *q, aac_net_study **out, int *n,
                                aac_error *err);

/* Retrieves one study into out_dir/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm (each file
 * checked by the ingestion and written atomically; an instance it cannot read is refused and
 * counted as failed). move_port 0: C-GET over the one association (no inbound port);
 * otherwise C-MOVE to our own AE title with a store SCP listening on move_port for the
 * duration (the PACS must know our AE title, host and that port). */
typedef struct aac_net_retrieved {
    int stored;               /* instances written */
    int failed;               /* instances refused (unreadable, not an image the ingestion reads) */
    int remote_failed;        /* sub-operations the PACS reported failed */
    int remote_warning;
} aac_net_retrieved;

aac_status aac_net_retrieve_study(const aac_net_scu_params *p, const char *study_uid, int move_port,
                                  const char *out_dir, aac_net_retrieved *counts, aac_error *err);

/* ---------------------------------------------------------------- the node */
typedef struct aac_node_params {
    const char *aet;           /* our AE title; the called AE title must match (default "AACLIP") */
    const char *bind;          /* address to listen on (default NULL: all; tests use 127.0.0.1) */
    int port;                  /* default 11112 */
    const char *spool;         /* required: received instances, jobs, results, status.json */
    const char *destination;   /* "AE@host:port" results are sent to; NULL: kept in the spool */
    const char *allow;         /* "AE[@host],..." calling AE titles accepted; NULL: any */
    double study_idle_s;       /* a study is complete after this long without an instance (30) */
    int send_formats;          /* AAC_FORMAT_SEG | _PMAP | _SR: which results are sent (all three) */
    int max_associations;      /* at once; more are refused (transient, local limit) (default 16) */
    int max_pdu;               /* largest PDU we receive (default 65536) */
    int64_t max_instance_bytes;/* an instance above this is refused, its association aborted
                                  (default 2 GiB) */
    int64_t min_free_bytes;    /* below this free on the spool's file system: C-STORE refused
                                  with "out of resources" (0xA700) (default 1 GiB) */
    int64_t receive_pool_bytes;/* files written ahead of time while idle, received into so that
                                  an instance's flush writes its data only (default 256 MiB;
                                  0: every instance into a new file) */
    int timeout_s;             /* network timeouts: association, each message (default 30) */
    double retry_min_s, retry_max_s; /* delivery backoff: doubles from min to max (2, 300) */
    aac_net_tls tls;
    /* The worker thread calls open_scorer once, before its first job (the model is loaded
     * there, so receiving starts at once), and close_scorer when it stops. */
    aac_status (*open_scorer)(void *user, aac_scorer **out, aac_error *err);
    void (*close_scorer)(void *user, aac_scorer *sc);
    /* One line per association, study, job and delivery, from any of the node's threads
     * (serialised by the node). event: "association", "refused", "study", "job", "sent",
     * "error", "note". */
    void (*log)(void *user, const char *event, const char *subject, const char *message);
    void *user;
} aac_node_params;

aac_node_params aac_node_default_params(void);

typedef struct aac_node aac_node;

/* Checks the parameters, recovers the spool (leftover temporary files removed, interrupted
 * jobs queued again, studies that were receiving scheduled) and binds the port. */
aac_status aac_node_open(const aac_node_params *p, aac_node **out, aac_error *err);
/* Serves until aac_node_stop: accepts associations, stores instances, queues and runs jobs,
 * delivers results. Returns after the step in progress is finished (the C-STOREs in flight
 * answered, the series being scored or the object being sent done). */
aac_status aac_node_run(aac_node *n, aac_error *err);
/* Asks a running node to stop. Async-signal-safe (sets a flag). */
void aac_node_stop(aac_node *n);
void aac_node_free(aac_node *n);

#ifdef __cplusplus
}
#endif
#endif
