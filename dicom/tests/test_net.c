/* test_net.c - the node's pieces without Orthanc (fast, runs under ASan): names (AE titles,
 * UIDs, peers, allow lists), the ledger, the instance check, the spool's recovery from files
 * alone (a crash left a running job, a pending series and a half-received file), and an
 * in-process acceptor: C-ECHO, C-STORE of good, unreadable and truncated files with a ledger
 * (a second run sends nothing), the allow list and the called AE title. The end-to-end
 * acceptance against Orthanc is cli/tests/net_orthanc_test.py. */
#include "dicom_test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* from as a received file of a node: in a file of its size + extra zero bytes (a pool file),
 * sealed with its receive record and padding of the given form; corrupt >= 0: that byte of
 * the data flipped after sealing (a write the crash lost); asked: the SOP Instance UID the
 * C-STORE named (NULL: the file's); short_by: the file's last bytes not received. Returns the
 * data's length. */
static long sealed_copy_ex(const char *from, const char *to, long extra, net_pad_form pad, long corrupt,
                           const char *asked, long short_by) {
    size_t len;
    unsigned char *b = (unsigned char *)tu_read_file(from, &len);
    net_instance in;
    aac_error e;
    CHECK_OK(net_instance_read(from, &in, &e), &e);
    if (b) len -= (size_t)short_by;
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(b && fd >= 0, "sealed copy of %s", from);
    if (!b || fd < 0) return free(b), -1;
    unsigned char *z = calloc(1, (size_t)extra + 1);
    CHECK(write(fd, b, len) == (ssize_t)len && write(fd, z, (size_t)extra) == (ssize_t)extra, "write %s", to);
    const uint32_t crc = net_rcv_crc(net_rcv_crc(0, NULL, 0), b + 128, len - 128);
    const uint32_t req = net_rcv_request_crc(in.sop_class, asked ? asked : in.sop_uid);
    CHECK(net_rcv_seal(fd, (int64_t)(len + (size_t)extra), (int64_t)len, crc, req, pad) >= 0, "seal %s", to);
    if (corrupt >= 0) CHECK(pwrite(fd, "\xA5", 1, corrupt) == 1, "corrupt %s", to);
    close(fd);
    free(z);
    free(b);
    return (long)len;
}

static long sealed_copy(const char *from, const char *to, long extra, net_pad_form pad, long corrupt) {
    return sealed_copy_ex(from, to, extra, pad, corrupt, NULL, 0);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

/* The receive record proves a file complete; the padding keeps a sealed pool file valid DICOM. */
static void test_record(void) {
    char p[300];
    snprintf(p, sizeof p, "%s/sealed.dcm", g_dir);
    const long n = sealed_copy(SAMPLE "/IM0001.dcm", p, 8192, NET_PAD_EXPLICIT_LE, -1);
    CHECK(n > 1000 && net_rcv_record(p, NULL) == n && file_size(p) == n + 8192, "record: length %ld", n);
    size_t len;
    unsigned char *b = (unsigned char *)tu_read_file(p, &len);
    CHECK(b && !memcmp(b, "AACLIP RECEIVE 1", 16) && !memcmp(b + n, "\xFC\xFF\xFC\xFFOB\0\0", 8) &&
              b[n + 8] == (unsigned char)(8180 & 0xFF) && b[n + 9] == (8180 >> 8) && !b[n + 10] && !b[n + 11],
          "preamble record, then (FFFC,FFFC) OB of 8180 bytes after the data");
    free(b);
    net_instance in;
    aac_error e;
    uint32_t asked = 0;
    CHECK(net_rcv_record(p, &asked) == n && asked == net_rcv_request_crc("1.2.840.10008.5.1.4.1.1.2",
                                                                          "2.25.304315987596235327958311935462790418423"),
          "the record holds what the C-STORE named");
    CHECK_OK(net_instance_check(p, NULL, 0, &in, &e), &e); /* the padded file reads as a whole image */
    CHECK(in.trailing_padding == 8192, "the padding takes the file's last 8192 bytes (%lld)",
          (long long)in.trailing_padding);
    /* a dataset 1000 bytes short of its pixel data: the header check alone passes (the padding
     * stands in for the missing bytes), but the padding is not whole and last any more */
    char cut_path[300];
    snprintf(cut_path, sizeof cut_path, "%s/sealed-short.dcm", g_dir);
    const long ns = sealed_copy_ex(SAMPLE "/IM0001.dcm", cut_path, 65536, NET_PAD_EXPLICIT_LE, -1, NULL, 1000);
    CHECK(net_rcv_record(cut_path, NULL) == ns && (net_instance_check(cut_path, NULL, 0, &in, &e) ||
                                                   in.trailing_padding != file_size(cut_path) - ns),
          "a dataset cut short: its padding does not take the rest of the file (%lld)", (long long)in.trailing_padding);
    CHECK(truncate(cut_path, ns) == 0 && net_instance_check(cut_path, NULL, 0, &in, &e) != AAC_OK,
          "cut to its data, it is refused: %s", e.message);
    CHECK(net_instance_check(SAMPLE "/IM0001.dcm", NULL, 0, &in, &e) == AAC_OK && in.trailing_padding == 0,
          "no padding: 0");
    CHECK(dt_run("dcmdump +P fffc,fffc '%s' | grep -q 'DataSetTrailingPadding'", p) == 0, "DCMTK sees the padding");
    /* the other forms */
    sealed_copy(SAMPLE "/IM0001.dcm", p, 4096, NET_PAD_IMPLICIT_LE, -1);
    b = (unsigned char *)tu_read_file(p, &len);
    CHECK(b && !memcmp(b + n, "\xFC\xFF\xFC\xFF\xF8\x0F\0\0", 8), "implicit VR: tag and 32-bit length 4088");
    free(b);
    sealed_copy(SAMPLE "/IM0001.dcm", p, 4096, NET_PAD_EXPLICIT_BE, -1);
    b = (unsigned char *)tu_read_file(p, &len);
    CHECK(b && !memcmp(b + n, "\xFF\xFC\xFF\xFCOB\0\0\0\0\x0F\xF4", 12), "big endian: tag and length 4084 reversed");
    free(b);
    sealed_copy(SAMPLE "/IM0001.dcm", p, 4096, NET_PAD_NONE, -1);
    CHECK(file_size(p) == n && net_rcv_record(p, NULL) == n, "deflated: the file is cut to the data instead");
    sealed_copy(SAMPLE "/IM0001.dcm", p, 6, NET_PAD_EXPLICIT_LE, -1);
    CHECK(file_size(p) == n && net_rcv_record(p, NULL) == n, "too little room for the padding: cut");
    /* torn or foreign: no record */
    sealed_copy(SAMPLE "/IM0001.dcm", p, 8192, NET_PAD_EXPLICIT_LE, n / 2);
    CHECK(net_rcv_record(p, NULL) == -1, "a byte of the data lost: no record");
    sealed_copy(SAMPLE "/IM0001.dcm", p, 8192, NET_PAD_EXPLICIT_LE, 130);
    CHECK(net_rcv_record(p, NULL) == -1, "the first byte after the preamble lost: no record");
    CHECK(net_rcv_record(SAMPLE "/IM0001.dcm", NULL) == -1, "a zero preamble: no record");
    cut_copy(SAMPLE "/IM0001.dcm", p, 20);
    CHECK(net_rcv_record(p, NULL) == -1 && net_rcv_record("/nonexistent/x", NULL) == -1, "short or missing file: no record");
}

static int busy_after(void *user) { return --*(int *)user < 0; }

static void test_pool(void) {
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/pool", g_dir);
    fs_mkdirs(dir);
    net_pool *p = NULL;
    aac_error e;
    CHECK_OK(net_pool_open(dir, 0, 0, &p, &e), &e);
    CHECK(!p && net_pool_fill(p, NULL, NULL) == 0 && net_pool_take(p, "x", NULL) == -1, "budget 0: no pool");
    CHECK_OK(net_pool_open(dir, 16 << 20, 0, &p, &e), &e);
    net_pool_info pi;
    net_pool_stats(p, &pi);
    CHECK(pi.files == 0 && pi.slot == 576 << 10, "empty, files of 576 KiB first (%lld)", (long long)pi.slot);
    int left = 3;
    CHECK(net_pool_fill(p, busy_after, &left) == 3, "the fill stops when busy says so");
    CHECK(net_pool_fill(p, NULL, NULL) == 25, "filled to the budget: 28 files of 576 KiB in 16 MiB");
    CHECK(net_pool_fill(p, NULL, NULL) == 0, "full");
    CHECK(dt_run("test $(ls '%s' | grep -c '^pool-[0-9]*\\.free$') -eq 28 && "
                 "test $(stat -c %%s '%s'/pool-* | sort -u) -eq 589824 && test $(du -sk '%s' | cut -f1) -ge 16128",
                 dir, dir, dir) == 0,
          "28 files of 589824 bytes, every block written");
    snprintf(path, sizeof path, "%s/1-1.part", dir);
    int64_t size = 0;
    const int fd = net_pool_take(p, path, &size);
    CHECK(fd >= 0 && size == 589824 && fs_exists(path), "taken: renamed to the receiving name, opened");
    CHECK(write(fd, "x", 1) == 1 && file_size(path) == 589824, "written over, not truncated");
    close(fd);
    net_pool_note(p, 1000000);
    net_pool_stats(p, &pi);
    CHECK(pi.files == 27 && pi.taken == 1 && pi.slot == 1048576, "a larger instance: next files of %lld",
          (long long)pi.slot);
    CHECK(net_pool_fill(p, NULL, NULL) == 0, "no room for a larger file yet");
    net_pool_free(p);
    /* names not ours, a link, a directory: not taken, removed */
    CHECK(dt_run("cd '%s' && touch pool-01.free pool-x.free junk.free pool--1.free && ln -s /etc/hostname pool-99.free "
                 "&& mkdir pool-98.free", dir) == 0, "odd names");
    CHECK_OK(net_pool_open(dir, 8 << 20, 0, &p, &e), &e);
    CHECK(dt_run("cd '%s' && ! ls pool-01.free pool-x.free junk.free pool--1.free pool-99.free 2>/dev/null && "
                 "test -d pool-98.free && rmdir pool-98.free", dir) == 0,
          "odd names removed (the folder left alone)");
    net_pool_stats(p, &pi);
    CHECK(pi.files == 14 && dt_run("test $(ls '%s' | grep -c '\\.free$') -eq 14", dir) == 0,
          "reopened with 8 MiB: 14 files kept, the rest removed");
    net_pool_free(p);
    CHECK_OK(net_pool_open(dir, 16 << 20, (int64_t)1 << 62, &p, &e), &e);
    net_pool_stats(p, &pi);
    CHECK(pi.files == 14 && net_pool_fill(p, NULL, NULL) == 0, "never below the disk's free-space floor");
    net_pool_stats(p, &pi);
    CHECK(pi.files == 0 && pi.bytes == 0 && dt_run("test $(ls '%s' | grep -c '\\.free$') -eq 0", dir) == 0,
          "below it, the pool's files are given back");
    net_pool_free(p);
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
    /* and a complete, fsynced instance whose rename into incoming/ did not reach the disk (a
     * node before the receive record named it .rcv) */
    snprintf(p, sizeof p, "%s/tmp/123-5.rcv", dir);
    cut_copy(SAMPLE "/IM0001.dcm", p, -1);
    /* pool files: one received into, flushed, its renames lost (its record decides, not its
     * name), one whose data did not all reach the disk (the record does not check), one never
     * used; and a .part with a record (its rename to the spool was lost) */
    snprintf(p, sizeof p, "%s/tmp/pool-77.free", dir);
    const long n2 = sealed_copy(SAMPLE "/IM0002.dcm", p, 65536, NET_PAD_EXPLICIT_LE, -1);
    snprintf(p, sizeof p, "%s/tmp/pool-78.free", dir);
    sealed_copy(SAMPLE "/IM0003.dcm", p, 65536, NET_PAD_EXPLICIT_LE, 5000);
    snprintf(p, sizeof p, "%s/tmp/123-9.part", dir);
    sealed_copy(SAMPLE "/IM0003.dcm", p, 65536, NET_PAD_EXPLICIT_LE, 5000);
    snprintf(p, sizeof p, "%s/tmp/pool-79.free", dir);
    cut_copy(SAMPLE "/IM0004.dcm", p, 0);
    CHECK(truncate(p, 589824) == 0, "pool file");
    snprintf(p, sizeof p, "%s/tmp/123-10.part", dir);
    sealed_copy(SAMPLE "/IM0004.dcm", p, 0, NET_PAD_EXPLICIT_LE, -1);
    /* one the node refused (its dataset not the instance its C-STORE named), whose removal
     * the crash undid */
    snprintf(p, sizeof p, "%s/tmp/123-11.part", dir);
    sealed_copy_ex(SAMPLE "/IM0005.dcm", p, 4096, NET_PAD_EXPLICIT_LE, -1, "1.2.3.4", 0);
    CHECK_OK(spool_open(dir, &sp, NULL, NULL, &e), &e);
    const char *series = "%s/incoming/2.25.190611226790868325425942225526589865138/"
                         "2.25.83385753049236022608026809101595047527/%s.dcm";
    snprintf(p, sizeof p, series, dir, "2.25.304315987596235327958311935462790418423");
    CHECK(fs_exists(p) && sp.received == 3, "the complete received files are put in place (%ld)", (long)sp.received);
    snprintf(p, sizeof p, series, dir, "2.25.170832626035733722969297425704101741450");
    CHECK(net_rcv_record(p, NULL) == n2 && file_size(p) == n2, "the pool file's instance: in place, padding cut");
    snprintf(p, sizeof p, series, dir, "2.25.255495892404108064802177263232341827685");
    CHECK(fs_exists(p), "the .part with a record: in place");
    snprintf(p, sizeof p, "%s/tmp/pool-78.free", dir);
    CHECK(fs_exists(p), "a pool file without a valid record stays in the pool");
    snprintf(p, sizeof p, "%s/tmp/123-9.part", dir);
    CHECK(!fs_exists(p), "a .part whose record does not check is removed");
    snprintf(p, sizeof p, "%s/tmp/123-11.part", dir);
    CHECK(!fs_exists(p), "an instance refused before the crash stays refused");
    snprintf(p, sizeof p, "%s/tmp/pool-79.free", dir);
    CHECK(file_size(p) == 589824, "an unused pool file stays");
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

static int srv_store(void *user, const char *tmp, int64_t length, int64_t padding, const char *sop_class,
                     const char *sop_uid, char *comment, size_t cap) {
    server *s = user;
    (void)sop_class;
    net_instance in;
    aac_error e;
    if (net_instance_check(tmp, sop_uid, 0, &in, &e) || (padding > 0 && truncate(tmp, length)) ||
        net_instance_commit(tmp, s->root, &in, 1, 0, &e)) {
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
    /* received into pool files, as a node does */
    net_pool *pool = NULL;
    aac_error e;
    CHECK_OK(net_pool_open(tmp, 8 << 20, 0, &pool, &e), &e);
    CHECK(net_pool_fill(pool, NULL, NULL) == 14, "pool of 14 files");
    net_scp_params sp = {.aet = "NODE", .bind = "127.0.0.1", .port = port, .max_associations = 2,
                         .timeout_s = 10, .allow = "SENDER", .tmp_dir = tmp, .pool = pool, .seal = 1,
                         .max_instance_bytes = 1 << 20, .store = srv_store, .should_stop = srv_stop, .user = &srv};
    net_scp *scp = NULL;
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
    CHECK(dt_run("test $(ls '%s' | grep -vc '\\.free$') -eq 0", tmp) == 0, "nothing left in the receive folder");
    net_pool_info pi;
    net_pool_stats(pool, &pi);
    CHECK(pi.taken == 3 && pi.files == 11, "3 instances received into pool files (%lu), 11 left", pi.taken);
    /* bit for bit after the File Meta Information, the record in the preamble, the padding cut */
    char got[700];
    snprintf(got, sizeof got, "%s/2.25.44454731186319020274646869627656913477.dcm", tree);
    CHECK(net_rcv_record(got, NULL) == file_size(got), "the received file's record covers it all");
    size_t na, nb;
    unsigned char *ra = (unsigned char *)tu_read_file(got, &na);
    unsigned char *rb = (unsigned char *)tu_read_file(SAMPLE "/IM0003.dcm", &nb);
    /* the dataset starts after group 0002: its group length (UL at 140) counts from byte 144 */
    const size_t ma = ra && na > 144 ? 144 + (size_t)(ra[140] | ra[141] << 8 | ra[142] << 16) : 0;
    const size_t mb = rb && nb > 144 ? 144 + (size_t)(rb[140] | rb[141] << 8 | rb[142] << 16) : 0;
    CHECK(ma && mb && na - ma == nb - mb && !memcmp(ra + ma, rb + mb, na - ma), "the dataset bit for bit as sent");
    free(ra);
    free(rb);
    srv.stop = 1;
    pthread_join(th, NULL);
    net_scp_free(scp);

    /* an instance over the size limit by its last bytes: the association ends, nothing kept */
    const size_t ds_bytes = mb ? nb - mb : 0; /* IM0003's dataset */
    srv.stop = 0;
    sp.port = p.peer.port = free_port();
    sp.max_instance_bytes = (int64_t)ds_bytes - 2;
    CHECK_OK(net_scp_open(&sp, &scp, &e), &e);
    pthread_create(&th, NULL, srv_main, scp);
    const int stored = srv.stored;
    const char *over = SAMPLE "/IM0003.dcm";
    aac_net_sent o;
    aac_net_store_files(&p, &over, 1, NULL, &o, &e);
    srv.stop = 1; /* the sender sees the abort at once; the node's thread ends after */
    pthread_join(th, NULL);
    net_scp_free(scp);
    CHECK(o != AAC_SENT_OK && srv.stored == stored, "over the limit in its last PDV: not stored (%d)", o);
    CHECK(dt_run("test $(ls '%s' | grep -vc '\\.free$') -eq 0", tmp) == 0, "its file removed");
    net_pool_free(pool);
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
    test_record();
    test_pool();
    test_spool();
    test_network();
    test_tls();
    if (!tu_failures) fs_remove_tree(g_dir);
    printf("test_net: %s\n", tu_failures ? "FAILED" : "ok");
    return tu_failures ? 1 : 0;
}
