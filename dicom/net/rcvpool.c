/* rcvpool.c - receiving without metadata on the critical path: a pool of files written in full
 * ahead of time, and the receive record that proves a received file complete.
 *
 * An instance's C-STORE response waits for its flush. Into a new file, that flush also writes
 * the block allocation, the inode and, on ext4, the parent folder, each a device round trip.
 * Into a file whose blocks are already allocated and written (a pool file) at the same size,
 * fdatasync writes the data and flushes, nothing else: PostgreSQL recycles WAL segments for the
 * same reason. So the pool's files are filled with zeros while the node is idle; an instance is
 * written over one from its start, the rest of the file becomes Data Set Trailing Padding
 * (FFFC,FFFC) so every state on disk is a valid DICOM file, and the padding is cut off (not
 * synced) once the data is durable.
 *
 * The file's name cannot say whether it is complete (renames of a pool file are not synced),
 * so the File Preamble, free for an implementation's use (PS3.10 7.1), holds a record written
 * with the data: a magic, the length of the DICOM content and the CRC-32 of its bytes after the
 * preamble. A restart keeps a file whose record checks, whatever its name. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include "error.h"
#include "fsutil.h"
#include "net_internal.h"

/* ---------------------------------------------------------------- the receive record */
static const char kMagic[16] = "AACLIP RECEIVE 1";
enum { kRecordMagic = 0, kRecordLength = 16, kRecordCrc = 24, kRecordRequest = 28, kPreamble = 128 };

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off) {
    const char *p = buf;
    while (n) {
        const ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

uint32_t net_rcv_crc(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n) { /* zlib takes uInt lengths */
        const uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k, n -= k;
    }
    return crc;
}

uint32_t net_rcv_request_crc(const char *sop_class, const char *sop_uid) {
    uint32_t c = net_rcv_crc(net_rcv_crc(0, NULL, 0), sop_class, strlen(sop_class) + 1);
    return net_rcv_crc(c, sop_uid, strlen(sop_uid));
}

int64_t net_rcv_seal(int fd, int64_t file_size, int64_t length, uint32_t crc, uint32_t request, net_pad_form pad) {
    /* Data Set Trailing Padding over the rest of a pool file: 8 bytes of header in implicit VR,
     * 12 in explicit VR (OB, 32-bit length); values of even length only. */
    const int64_t rest = file_size - length;
    const int head = pad == NET_PAD_IMPLICIT_LE ? 8 : 12;
    int64_t padding = 0;
    if (rest > 0) {
        if (pad != NET_PAD_NONE && rest >= head && rest - head <= 0xFFFFFFFEll && !(length & 1)) {
            unsigned char h[12] = {0xFC, 0xFF, 0xFC, 0xFF, 'O', 'B', 0, 0};
            const uint64_t vl = (uint64_t)(rest - head);
            if (pad == NET_PAD_IMPLICIT_LE) {
                put_le(h + 4, vl, 4);
            } else if (pad == NET_PAD_EXPLICIT_LE) {
                put_le(h + 8, vl, 4);
            } else { /* big endian: the tag's and the length's bytes reversed */
                h[0] = 0xFF, h[1] = 0xFC, h[2] = 0xFF, h[3] = 0xFC;
                for (int i = 0; i < 4; i++) h[8 + i] = (unsigned char)(vl >> (24 - 8 * i));
            }
            if (pwrite_all(fd, h, (size_t)head, length)) return -1;
            padding = rest;
        } else if (ftruncate(fd, length)) { /* no padding possible: the slower, metadata flush */
            return -1;
        }
    }
    unsigned char rec[kPreamble] = {0};
    memcpy(rec + kRecordMagic, kMagic, sizeof kMagic);
    put_le(rec + kRecordLength, (uint64_t)length, 8);
    put_le(rec + kRecordCrc, crc, 4);
    put_le(rec + kRecordRequest, request, 4);
    return pwrite_all(fd, rec, sizeof rec, 0) ? -1 : padding;
}

int64_t net_rcv_record(const char *path, uint32_t *request) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT || errno == ELOOP ? -1 : -2;
    unsigned char rec[kPreamble];
    struct stat st;
    int64_t length = -1;
    const ssize_t got = pread(fd, rec, sizeof rec, 0);
    if (got < 0 || fstat(fd, &st)) {
        length = -2;
    } else if (got == (ssize_t)sizeof rec && !memcmp(rec, kMagic, sizeof kMagic) && S_ISREG(st.st_mode)) {
        const uint64_t n = get_le(rec + kRecordLength, 8);
        const uint32_t want = (uint32_t)get_le(rec + kRecordCrc, 4);
        if (request) *request = (uint32_t)get_le(rec + kRecordRequest, 4);
        if (n >= kPreamble + 4 && n <= (uint64_t)st.st_size) {
            enum { kChunk = 1 << 20 };
            unsigned char *buf = malloc(kChunk);
            uint32_t crc = net_rcv_crc(0, NULL, 0);
            off_t off = kPreamble;
            ssize_t r = 1;
            while (buf && off < (off_t)n) {
                const size_t k = (uint64_t)(n - (uint64_t)off) < kChunk ? (size_t)(n - (uint64_t)off) : kChunk;
                if ((r = pread(fd, buf, k, off)) != (ssize_t)k) break;
                crc = net_rcv_crc(crc, buf, k);
                off += (off_t)k;
            }
            if (!buf || r < 0) length = -2; /* not readable now: cannot say */
            else if (off == (off_t)n && crc == want) length = (int64_t)n;
            free(buf);
        }
    }
    close(fd);
    return length;
}

/* ---------------------------------------------------------------- the pool */
struct net_pool {
    pthread_mutex_t mu;
    char *dir;
    int64_t budget, min_free;
    int64_t slot;                /* size of the files made next */
    int64_t recent[32];          /* sizes received lately: the slot covers the largest */
    int n_recent, i_recent;
    uint64_t *seq;               /* ready files: <dir>/pool-<seq>.free */
    int64_t *size;
    int n, cap;
    int64_t bytes;               /* their total size */
    uint64_t next_seq;
    unsigned long taken, missed; /* C-STOREs served from the pool, and without a file left */
};

enum { kMinSlot = 64 << 10, kSlotStep = 64 << 10, kFirstSlot = 576 << 10, kMaxSlot = 256 << 20 };

static void pool_name(const net_pool *p, uint64_t seq, char *out, size_t cap) {
    snprintf(out, cap, "%s/pool-%llu%s", p->dir, (unsigned long long)seq, NET_POOL_SUFFIX);
}

static int pool_push(net_pool *p, uint64_t seq, int64_t size) {
    if (p->n == p->cap) {
        const int c = p->cap ? 2 * p->cap : 64;
        uint64_t *s = realloc(p->seq, (size_t)c * sizeof *s);
        if (s) p->seq = s;
        int64_t *z = s ? realloc(p->size, (size_t)c * sizeof *z) : NULL;
        if (z) p->size = z;
        if (!s || !z) return -1;
        p->cap = c;
    }
    p->seq[p->n] = seq, p->size[p->n] = size, p->n++;
    p->bytes += size;
    return 0;
}

static int64_t clamp_slot(const net_pool *p, int64_t want) {
    int64_t top = p->budget / 8; /* at least 8 files in the pool */
    if (top > kMaxSlot) top = kMaxSlot;
    want = (want + kSlotStep - 1) / kSlotStep * kSlotStep;
    if (want > top) want = top;
    return want < kMinSlot ? kMinSlot : want;
}

aac_status net_pool_open(const char *dir, int64_t budget, int64_t min_free, net_pool **out, aac_error *err) {
    *out = NULL;
    if (budget <= 0) return AAC_OK;
    net_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->dir = strdup(dir))) {
        free(p);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    p->budget = budget, p->min_free = min_free;
    p->slot = clamp_slot(p, kFirstSlot);
    /* Files a previous run made: their content does not matter, only that it was written (the
     * restart has already taken the ones whose receive record checks). */
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!fs_ends_with(e->d_name, NET_POOL_SUFFIX)) continue;
        /* only our own names (pool-<n>.free as we write them) and plain files */
        char *end;
        const char *digits = e->d_name + 5;
        const unsigned long long seq = strncmp(e->d_name, "pool-", 5) || !isdigit((unsigned char)*digits)
                                           ? 0
                                           : strtoull(digits, &end, 10);
        char path[4400], ours[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        pool_name(p, seq, ours, sizeof ours);
        struct stat st;
        if (strcmp(path, ours) || lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_size < kMinSlot ||
            p->bytes + st.st_size > budget || pool_push(p, seq, st.st_size)) {
            unlink(path);
            continue;
        }
        if (seq >= p->next_seq) p->next_seq = seq + 1;
    }
    if (d) closedir(d);
    *out = p;
    return AAC_OK;
}

void net_pool_free(net_pool *p) {
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p->seq);
    free(p->size);
    free(p->dir);
    free(p);
}

int net_pool_take(net_pool *p, const char *path, int64_t *size) {
    if (!p) return -1;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (!p->n) {
            p->missed++;
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        p->n--;
        const uint64_t seq = p->seq[p->n];
        const int64_t sz = p->size[p->n];
        p->bytes -= sz;
        p->taken++;
        pthread_mutex_unlock(&p->mu);
        char from[4400];
        pool_name(p, seq, from, sizeof from);
        if (rename(from, path)) continue;
        const int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            *size = sz;
            return fd;
        }
        unlink(path);
    }
}

void net_pool_note(net_pool *p, int64_t bytes) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->recent[p->i_recent] = bytes;
    p->i_recent = (p->i_recent + 1) % (int)(sizeof p->recent / sizeof p->recent[0]);
    if (p->n_recent < (int)(sizeof p->recent / sizeof p->recent[0])) p->n_recent++;
    int64_t top = 0;
    for (int i = 0; i < p->n_recent; i++)
        if (p->recent[i] > top) top = p->recent[i];
    /* room for the padding's header and for a few bytes more in the next instance */
    p->slot = clamp_slot(p, top + 8192);
    pthread_mutex_unlock(&p->mu);
}

/* One file of size bytes, written in full and flushed (its blocks and inode on disk). */
static int make_file(const char *path, int64_t size, const char *zeros, size_t zcap) {
    const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int64_t off = 0;
    while (off < size) {
        const size_t k = size - off < (int64_t)zcap ? (size_t)(size - off) : zcap;
        if (pwrite_all(fd, zeros, k, off)) break;
        off += (int64_t)k;
    }
    const int ok = off == size && fsync(fd) == 0;
    close(fd);
    if (!ok) unlink(path);
    return ok ? 0 : -1;
}

static int64_t disk_free(const char *dir) {
    struct statvfs v;
    return statvfs(dir, &v) ? -1 : (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

void net_pool_give_back(net_pool *p) {
    if (!p) return;
    for (;;) {
        const int64_t avail = disk_free(p->dir);
        pthread_mutex_lock(&p->mu);
        const int go = avail >= 0 && avail < p->min_free && p->n > 0;
        uint64_t seq = 0;
        if (go) p->n--, seq = p->seq[p->n], p->bytes -= p->size[p->n];
        pthread_mutex_unlock(&p->mu);
        if (!go) return;
        char path[4400];
        pool_name(p, seq, path, sizeof path);
        unlink(path);
    }
}

int net_pool_fill(net_pool *p, int (*busy)(void *), void *user) {
    if (!p) return 0;
    net_pool_give_back(p);
    enum { kZeros = 1 << 20, kBatch = 16 };
    char *zeros = NULL;
    uint64_t batch_seq[kBatch];
    int64_t batch_size[kBatch];
    int nb = 0, made = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        const int64_t slot = p->slot;
        int room = p->bytes + (int64_t)(nb + 1) * slot <= p->budget; /* the batch is not counted yet */
        pthread_mutex_unlock(&p->mu);
        if (room) room = disk_free(p->dir) >= p->min_free + slot + (64 << 20); /* never the last free space */
        if (room && !zeros) room = (zeros = calloc(1, kZeros)) != NULL;
        char path[4400];
        int stop = !room || (busy && busy(user));
        if (!stop) {
            pthread_mutex_lock(&p->mu);
            const uint64_t seq = p->next_seq++;
            pthread_mutex_unlock(&p->mu);
            pool_name(p, seq, path, sizeof path);
            stop = make_file(path, slot, zeros, kZeros) != 0;
            if (!stop) batch_seq[nb] = seq, batch_size[nb] = slot, nb++;
        }
        if (nb && (stop || nb == kBatch)) {
            /* The files are usable once their names are on disk too. */
            fs_sync_dir(p->dir);
            pthread_mutex_lock(&p->mu);
            for (int i = 0; i < nb; i++) {
                if (pool_push(p, batch_seq[i], batch_size[i])) {
                    pool_name(p, batch_seq[i], path, sizeof path);
                    unlink(path);
                } else {
                    made++;
                }
            }
            pthread_mutex_unlock(&p->mu);
            nb = 0;
        }
        if (stop) break;
    }
    free(zeros);
    return made;
}

void net_pool_stats(net_pool *p, net_pool_info *out) {
    memset(out, 0, sizeof *out);
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    out->files = p->n, out->bytes = p->bytes, out->slot = p->slot;
    out->taken = p->taken, out->missed = p->missed;
    pthread_mutex_unlock(&p->mu);
}
