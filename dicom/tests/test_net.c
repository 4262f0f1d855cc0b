/* test_net.c - the node's pieces without Orthanc (fast, runs under ASan): names (AE titles,
 * UIDs, peers, allow lists), the ledger, the instance check, the spool's recovery from files
 * alone (a crash left a running job, a pending series and a half-received file), and an
 * in-process acceptor: C-ECHO, C-STORE of good, unreadable and truncated files with a ledger
 * (a second run sends nothing), the allow list and the called AE title. The end-to-end
 * acceptance against Orthanc is cli/tests/net_orthanc_test.py. */
#include "dicom_test.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsutil.h"
#include "node_internal.h"

#define SAMPLE AACLIP_SOURCE_DIR "/testdata/sample-study/dicom"

static char g_dir[] = "/tmp/aac_test_net_XXXXXX";

static void test_names(void) {
    CHECK(aac_net_aet_valid("AACLIP") && aac_net_aet_valid("A B") && aac_net_aet_valid("0123456789ABCDEF"), "AE ok");
    CHECK(!aac_net_aet_valid("") && !aac_net_aet_valid("   ") && !aac_net_aet_valid("0123456789ABCDEFG") &&
              !aac_net_aet_valid("A\\B") && !aac_net_aet_valid("A\nB"),
          "bad AE titles refused");
    CHECK(aac_net_uid_valid("1.2.840.10008.1.2") && aac_net_uid_valid("2.25.0") && aac_net_uid_valid("0"), "UIDs ok");
    const char *bad[] = {"", ".", "1..2", "1.2.", ".1.2", "1.02", "1.2a", "../etc", "1/2",
                         "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(!aac_net_uid_valid(bad[i]), "UID '%s' refused", bad[i]);
    aac_net_peer p;
    aac_error e;
    CHECK(aac_net_peer_parse("ORTHANC@pacs.example.org:4242", &p, &e) == AAC_OK && !strcmp(p.aet, "ORTHANC") &&
              !strcmp(p.host, "pacs.example.org") && p.port == 4242,
          "peer parsed");
    CHECK(aac_net_peer_parse("PACS@[::1]:104", &p, &e) == AAC_OK && !strcmp(p.host, "[::1]") && p.port == 104, "v6");
    const char *bad_peers[] = {"ORTHANC", "ORTHANC@host", "@host:1", "ORTHANC@:1", "ORTHANC@host:0",
                               "ORTHANC@host:65536", "ORTHANC@host:12x", "0123456789ABCDEFG@h:1", "A@h;rm:1"};
    for (size_t i = 0; i < sizeof bad_peers / sizeof bad_peers[0]; i++)
        CHECK(aac_net_peer_parse(bad_peers[i], &p, &e) == AAC_ERR_ARG && strstr(e.message, bad_peers[i]),
              "'%s' refused naming it: %s", bad_peers[i], e.message);
    CHECK(net_allow_match(NULL, "ANY", "h") && net_allow_match("", "ANY", "h"), "no list: anyone");
    CHECK(net_allow_match("ORTHANC,DCM4CHEE@10.0.0.5", "ORTHANC", "10.9.9.9"), "AE anywhere");
    CHECK(net_allow_match("ORTHANC,DCM4CHEE@10.0.0.5", "DCM4CHEE ", "10.0.0.5"), "AE@host, padded AE");
    CHECK(!net_allow_match("ORTHANC,DCM4CHEE@10.0.0.5", "DCM4CHEE", "10.0.0.6"), "AE from another host");
    CHECK(!net_allow_match("ORTHANC", "ORTHANC2", "h") && !net_allow_match("ORTHANC", "", NULL), "other AE");
    CHECK(net_allow_check("A,B@h", &e) == AAC_OK && net_allow_check("A,,B", &e) == AAC_ERR_ARG &&
              net_allow_check("A@", &e) == AAC_ERR_ARG && net_allow_check("", &e) == AAC_ERR_ARG,
          "allow list syntax");
}

static void test_ledger(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/ledger.json", g_dir);
    aac_ledger *l = NULL;
    aac_error e;
    CHECK_OK(aac_ledger_open(path, &l, &e), &e);
    CHECK(aac_ledger_count(l) == 0 && !aac_ledger_has(l, "1.2"), "new ledger empty");
    CHECK_OK(aac_ledger_add(l, "1.2", &e), &e);
    CHECK_OK(aac_ledger_add(l, "1.3", &e), &e);
    CHECK_OK(aac_ledger_add(l, "1.2", &e), &e);
    aac_ledger_free(l);
    CHECK_OK(aac_ledger_open(path, &l, &e), &e);
    CHECK(aac_ledger_count(l) == 2 && aac_ledger_has(l, "1.2") && aac_ledger_has(l, "1.3"), "ledger reread");
    aac_ledger_free(l);
    FILE *f = fopen(path, "w");
    fputs("{\"acknowledged\": 5", f);
    fclose(f);
    CHECK(aac_ledger_open(path, &l, &e) == AAC_ERR_FORMAT && strstr(e.message, path), "broken ledger: %s", e.message);
}

/* A copy of the first sample file cut to n bytes. */
static void cut_copy(const char *from, const char *to, long n) {
    size_t len;
    char *b = tu_read_file(from, &len);
    FILE *f = fopen(to, "wb");
    CHECK(b && f, "copy %s", from);
    if (b && f) fwrite(b, 1, n < 0 ? len : (size_t)n, f);
    if (f) fclose(f);
    free(b);
}

static void test_instance(void) {
    char good[300], half[300], bad[300];
    snprintf(good, sizeof good, "%s/good.dcm", g_dir);
    snprintf(half, sizeof half, "%s/half.dcm", g_dir);
    snprintf(bad, sizeof bad, "%s/bad.dcm", g_dir);
    cut_copy(SAMPLE "/IM0001.dcm", good, -1);
    cut_copy(SAMPLE "/IM0001.dcm", half, 70000);
    FILE *f = fopen(bad, "w");
    fputs("not DICOM at all", f);
    fclose(f);
    net_instance in;
    aac_error e;
    CHECK_OK(net_instance_check(good, NULL, 0, &in, &e), &e);
    CHECK(!strcmp(in.sop_uid, "2.25.304315987596235327958311935462790418423") &&
              !strcmp(in.series_uid, "2.25.83385753049236022608026809101595047527") &&
              !strcmp(in.sop_class, "1.2.840.10008.5.1.4.1.1.2") && !strcmp(in.patient_id, "AACLIP-SAMPLE"),
          "instance attributes");
    CHECK(net_instance_check(good, "1.2.3", 0, &in, &e) == AAC_ERR_FORMAT && strstr(e.message, "1.2.3"),
          "another SOP Instance UID than the C-STORE named: %s", e.message);
    CHECK(net_instance_check(half, NULL, 0, &in, &e) != AAC_OK && strstr(e.message, "premature end"),
          "truncated: %s", e.message);
    CHECK(net_instance_check(bad, NULL, 0, &in, &e) != AAC_OK, "garbage refused: %s", e.message);
    char root[300], final[600];
    snprintf(root, sizeof root, "%s/tree", g_dir);
    fs_mkdirs(root);
    CHECK_OK(net_instance_check(good, NULL, 0, &in, &e), &e);
    CHECK_OK(net_instance_commit(good, root, &in, 1, 0, &e), &e);
    net_instance_path(root, &in, final, sizeof final);
    CHECK(fs_exists(final) && !fs_exists(good), "committed to %s", final);
}

static void test_spool(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/spool", g_dir);
    spool sp;
    aac_error e;
    CHECK_OK(spool_open(dir, &sp, NULL, NULL, &e), &e);
    spool other;
    CHECK(spool_open(dir, &other, NULL, NULL, &e) == AAC_ERR_IO && strstr(e.message, "in use"),
          "a second node on the spool refused: %s", e.message);
    spool_close(&other);
    net_instance in = {.study_uid = "1.2.3", .series_uid = "1.2.3.4", .sop_uid = "1.2.3.4.5", .patient_id = "P"};
    CHECK_OK(spool_receive_begin(&sp, &in, &e), &e);
    spool_receive_end(&sp, in.study_uid, 1);
    CHECK(spool_close_idle(&sp, 3600, NULL, NULL) == 0, "study not idle yet");
    job j = {.id = 7, .state = JOB_RUNNING, .study = "1.2.9", .series = "1.2.9.1", .created = "x"};
    CHECK_OK(job_add_result(&j, "P/1.2.9/1.2.9.1", &e), &e);
    CHECK_OK(job_write(sp.jobs_dir, &j, &e), &e);
    job_free(&j);
    spool_close(&sp);
    /* the crash: a half-received file and a temporary job file */
    char p[600];
    snprintf(p, sizeof p, "%s/tmp/123-4.rcv", dir);
    cut_copy(SAMPLE "/IM0001.dcm", p, 1000);
    snprintf(p, sizeof p, "%s/jobs/.0000000008.json.tmp-1-0.json", dir);
    cut_copy(SAMPLE "/IM0001.dcm", p, 10);
    /* a whole dataset still named .part (its C-STORE not finished: the name decides, not the
     * content) */
    snprintf(p, sizeof p, "%s/tmp/123-6.part", dir);
    cut_copy(SAMPLE "/IM0002.dcm", p, -1);
    /* and a complete, fsynced instance whose rename into incoming/ did not reach the disk */
    snprintf(p, sizeof p, "%s/tmp/123-5.rcv", dir);
    cut_copy(SAMPLE "/IM0001.dcm", p, -1);
    CHECK_OK(spool_open(dir, &sp, NULL, NULL, &e), &e);
    snprintf(p, sizeof p,
             "%s/incoming/2.25.190611226790868325425942225526589865138/2.25.83385753049236022608026809101595047527/"
             "2.25.304315987596235327958311935462790418423.dcm", dir);
    CHECK(fs_exists(p) && sp.received == 1, "the complete received file is put in place");
    snprintf(p, sizeof p, "%s/tmp/123-4.rcv", dir);
    CHECK(!fs_exists(p), "half-received file removed");
    snprintf(p, sizeof p, "%s/tmp/123-6.part", dir);
    CHECK(!fs_exists(p), "file of an unfinished C-STORE removed");
    snprintf(p, sizeof p, "%s/jobs/.0000000008.json.tmp-1-0.json", dir);
    CHECK(!fs_exists(p), "temporary job file removed");
    CHECK(sp.n_jobs == 1 && sp.jobs[0].id == 7 && sp.jobs[0].state == JOB_QUEUED && sp.jobs[0].n_results == 0,
          "the running job is queued again");
    CHECK(sp.n_pending == 2 && sp.n_studies == 2 && !strcmp(sp.studies[0].uid, "1.2.3"),
          "pending series back, and the recovered instance's series pending");
    job r;
    job_path(sp.jobs_dir, 7, ".json", p, sizeof p);
    CHECK_OK(job_read(p, 7, &r, &e), &e);
    CHECK(r.state == JOB_QUEUED, "state file says queued");
    job_free(&r);
    CHECK(spool_close_idle(&sp, 0, NULL, NULL) == 2 && sp.n_pending == 0 && sp.n_jobs == 3 && sp.jobs[1].id == 8,
          "idle studies: their pending series are jobs 8 and 9");
    snprintf(p, sizeof p, "%s/pending/1.2.3.4.json", dir);
    CHECK(!fs_exists(p), "pending file renamed into jobs/");
    job_path(sp.jobs_dir, 8, ".json", p, sizeof p);
    CHECK_OK(job_read(p, 8, &r, &e), &e);
    CHECK(r.state == JOB_QUEUED && !strcmp(r.series, "1.2.3.4") && !strcmp(r.study, "1.2.3"), "job 8 file");
    job_free(&r);
    job_path(sp.jobs_dir, 9, ".json", p, sizeof p);
    CHECK_OK(job_read(p, 9, &r, &e), &e);
    CHECK(!strcmp(r.series, "2.25.83385753049236022608026809101595047527"), "job 9: the recovered series");
    job_free(&r);
    job *j8 = spool_job(&sp, 8);
    j8->state = JOB_DONE;
    CHECK_OK(spool_job_update(&sp, j8, &e), &e);
    CHECK(sp.n_jobs == 2 && sp.done == 1, "a done job leaves memory");
    spool_close(&sp);
    CHECK_OK(spool_open(dir, &sp, NULL, NULL, &e), &e);
    CHECK(sp.n_jobs == 2 && sp.done == 1 && sp.max_id == 9, "reopened: 2 queued, 1 done, ids continue");
    spool_close(&sp);
}

/* ---------------------------------------------------------------- acceptor + client */
typedef struct server {
    char root[300];
    volatile int stop;
    int stored;
} server;

static int srv_store(void *user, const char *tmp, const char *sop_class, const char *sop_uid, char *comment,
                     size_t cap) {
    server *s = user;
    (void)sop_class;
    net_instance in;
    aac_error e;
    if (net_instance_check(tmp, sop_uid, 0, &in, &e) || net_instance_commit(tmp, s->root, &in, 1, 0, &e)) {
        fs_discard(tmp);
        snprintf(comment, cap, "%s", e.message);
        return NET_STATUS_CANNOT_UNDERSTAND;
    }
    s->stored++;
    return 0;
}

static int srv_stop(void *user) { return ((server *)user)->stop; }
static void *srv_main(void *scp) {
    net_scp_serve(scp);
    return NULL;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_network(void) {
    server srv = {.stop = 0};
    snprintf(srv.root, sizeof srv.root, "%s/received", g_dir);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/rcv", g_dir);
    fs_mkdirs(srv.root);
    fs_mkdirs(tmp);
    const int port = free_port();
    net_scp_params sp = {.aet = "NODE", .bind = "127.0.0.1", .port = port, .max_associations = 2,
                         .timeout_s = 10, .allow = "SENDER", .tmp_dir = tmp, .max_instance_bytes = 1 << 20,
                         .store = srv_store, .should_stop = srv_stop, .user = &srv};
    net_scp *scp = NULL;
    aac_error e;
    CHECK_OK(net_scp_open(&sp, &scp, &e), &e);
    net_scp *busy = NULL;
    CHECK(net_scp_open(&sp, &busy, &e) == AAC_ERR_IO && strstr(e.message, "listen"), "port taken: %s", e.message);
    pthread_t th;
    pthread_create(&th, NULL, srv_main, scp);

    aac_net_scu_params p = aac_net_scu_default_params();
    p.aet = "SENDER";
    p.timeout_s = 10;
    snprintf(p.peer.aet, sizeof p.peer.aet, "NODE");
    snprintf(p.peer.host, sizeof p.peer.host, "127.0.0.1");
    p.peer.port = port;
    CHECK_OK(aac_net_echo(&p, &e), &e);
    p.aet = "STRANGER";
    CHECK(aac_net_echo(&p, &e) == AAC_ERR_IO, "calling AE not on the allow list refused: %s", e.message);
    p.aet = "SENDER";
    snprintf(p.peer.aet, sizeof p.peer.aet, "OTHER");
    CHECK(aac_net_echo(&p, &e) == AAC_ERR_IO, "called AE not ours refused: %s", e.message);
    snprintf(p.peer.aet, sizeof p.peer.aet, "NODE");

    char f[4][300], ledger_path[300];
    snprintf(f[0], sizeof f[0], SAMPLE "/IM0002.dcm");
    snprintf(f[1], sizeof f[1], SAMPLE "/IM0003.dcm");
    snprintf(f[2], sizeof f[2], "%s/garbage.dcm", g_dir);
    snprintf(f[3], sizeof f[3], "%s/cut.dcm", g_dir);
    FILE *g = fopen(f[2], "w");
    fputs("garbage", g);
    fclose(g);
    cut_copy(SAMPLE "/IM0004.dcm", f[3], -1);
    /* a parsable file whose pixel data is short: rewrite Rows from 256 to 512 */
    size_t len;
    unsigned char *b = (unsigned char *)tu_read_file(f[3], &len);
    for (size_t i = 0; b && i + 10 < len; i++)
        if (!memcmp(b + i, "\x28\x00\x10\x00US\x02\x00\x00\x01", 10)) b[i + 9] = 2; /* (0028,0010) US 256 -> 512 */
    g = fopen(f[3], "wb");
    fwrite(b, 1, len, g);
    fclose(g);
    free(b);
    snprintf(ledger_path, sizeof ledger_path, "%s/push.json", g_dir);
    aac_ledger *l = NULL;
    CHECK_OK(aac_ledger_open(ledger_path, &l, &e), &e);
    const char *files[4] = {f[0], f[1], f[2], f[3]};
    aac_net_sent out[4];
    CHECK_OK(aac_net_store_files(&p, files, 4, l, out, &e), &e);
    CHECK(out[0] == AAC_SENT_OK && out[1] == AAC_SENT_OK && out[2] == AAC_SENT_UNREADABLE && out[3] == AAC_SENT_REFUSED,
          "outcomes %d %d %d %d", out[0], out[1], out[2], out[3]);
    CHECK(srv.stored == 2 && aac_ledger_count(l) == 2, "2 stored (%d), 2 in the ledger", srv.stored);
    CHECK_OK(aac_net_store_files(&p, files, 2, l, out, &e), &e);
    CHECK(out[0] == AAC_SENT_SKIPPED && out[1] == AAC_SENT_SKIPPED && srv.stored == 2, "second run sends nothing");
    aac_ledger_free(l);
    char tree[600];
    snprintf(tree, sizeof tree,
             "%s/2.25.190611226790868325425942225526589865138/2.25.83385753049236022608026809101595047527", srv.root);
    CHECK(dt_run("test $(ls '%s' | wc -l) -eq 2", tree) == 0, "2 files under study/series");
    CHECK(dt_run("test $(ls '%s' | wc -l) -eq 0", tmp) == 0, "nothing left in the receive folder");
    srv.stop = 1;
    pthread_join(th, NULL);
    net_scp_free(scp);
    p.timeout_s = 2;
    CHECK(aac_net_echo(&p, &e) == AAC_ERR_IO, "stopped node: no answer");
}

/* TLS: a CA and two certificates from openssl; the node requires a certificate of that CA. */
static void test_tls(void) {
    char d[300];
    snprintf(d, sizeof d, "%s/tls", g_dir);
    if (dt_run("mkdir -p '%s' && cd '%s' && ("
               "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ca && "
               "openssl req -newkey rsa:2048 -nodes -keyout a.key -out a.csr -subj /CN=a && "
               "openssl x509 -req -in a.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out a.pem -days 2 && "
               "openssl req -x509 -newkey rsa:2048 -nodes -keyout b.key -out b.pem -days 2 -subj /CN=b) >/dev/null 2>&1",
               d, d) != 0) {
        printf("test_net: openssl could not make test certificates: TLS not tested\n");
        return;
    }
    char key[400], cert[400], ca[400], bkey[400], bcert[400], tmp[300];
    snprintf(key, sizeof key, "%s/a.key", d);
    snprintf(cert, sizeof cert, "%s/a.pem", d);
    snprintf(ca, sizeof ca, "%s/ca.pem", d);
    snprintf(bkey, sizeof bkey, "%s/b.key", d);
    snprintf(bcert, sizeof bcert, "%s/b.pem", d);
    snprintf(tmp, sizeof tmp, "%s/rcv-tls", g_dir);
    fs_mkdirs(tmp);
    server srv = {.stop = 0};
    snprintf(srv.root, sizeof srv.root, "%s/received-tls", g_dir);
    fs_mkdirs(srv.root);
    const int port = free_port();
    net_scp_params sp = {.aet = "NODE", .bind = "127.0.0.1", .port = port, .timeout_s = 10, .tmp_dir = tmp,
                         .tls = {key, cert, ca}, .store = srv_store, .should_stop = srv_stop, .user = &srv};
    net_scp *scp = NULL;
    aac_error e;
    CHECK_OK(net_scp_open(&sp, &scp, &e), &e);
    pthread_t th;
    pthread_create(&th, NULL, srv_main, scp);
    aac_net_scu_params p = aac_net_scu_default_params();
    p.timeout_s = 5;
    snprintf(p.peer.aet, sizeof p.peer.aet, "NODE");
    snprintf(p.peer.host, sizeof p.peer.host, "127.0.0.1");
    p.peer.port = port;
    p.tls = (aac_net_tls){key, cert, ca};
    CHECK_OK(aac_net_echo(&p, &e), &e);
    const char *file = SAMPLE "/IM0005.dcm";
    aac_net_sent out;
    CHECK_OK(aac_net_store_files(&p, &file, 1, NULL, &out, &e), &e);
    CHECK(out == AAC_SENT_OK && srv.stored == 1, "C-STORE over TLS");
    p.tls = (aac_net_tls){bkey, bcert, NULL};
    CHECK(aac_net_echo(&p, &e) == AAC_ERR_IO, "a certificate not from the CA refused: %s", e.message);
    p.tls = (aac_net_tls){NULL, NULL, NULL};
    CHECK(aac_net_echo(&p, &e) == AAC_ERR_IO, "plain TCP to a TLS node refused: %s", e.message);
    p.tls = (aac_net_tls){key, bcert, NULL};
    CHECK(aac_net_echo(&p, &e) == AAC_ERR_ARG && strstr(e.message, "does not match"), "key/cert mismatch: %s",
          e.message);
    srv.stop = 1;
    pthread_join(th, NULL);
    net_scp_free(scp);
}

int main(void) {
    if (!mkdtemp(g_dir)) return perror("mkdtemp"), 1;
    test_names();
    test_ledger();
    test_instance();
    test_spool();
    test_network();
    test_tls();
    if (!tu_failures) fs_remove_tree(g_dir);
    printf("test_net: %s\n", tu_failures ? "FAILED" : "ok");
    return tu_failures ? 1 : 0;
}
