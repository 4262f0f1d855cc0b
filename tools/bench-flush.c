/* bench-flush.c - what making one received instance durable costs on a disk, by how its file
 * was prepared (the reason for the node's receive pool, dicom/net/rcvpool.c).
 *   cc -O2 -o /tmp/bench-flush tools/bench-flush.c && /tmp/bench-flush DIR [BYTES] [N]
 * Each of N files (default 200) of BYTES (default 525166: a 512 x 512 CT slice) is written in
 * 16 KiB pieces with writeback started every 128 KiB, as the node receives, then flushed; the
 * median and 90th percentile per file are printed for each way. DIR must be on the disk to
 * measure; its files are removed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void put(int fd, const char *buf, long size) {
    for (long off = 0; off < size; off += 16384) {
        const long k = size - off < 16384 ? size - off : 16384;
        if (write(fd, buf + off, (size_t)k) != k) perror("write"), exit(1);
        if ((off + k) % 131072 == 0) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
}

enum { NEW_NOSYNC, NEW_FSYNC, NEW_FDATASYNC, EMPTY_FSYNC, FALLOCATED, WRITTEN, WRITTEN_CUT, N_WAYS };
static const char *const kWay[N_WAYS] = {
    "new file, no flush (storescp)",      "new file + fsync + rename",
    "new file + fdatasync + rename",      "created empty beforehand + fsync",
    "fallocate'd beforehand + fdatasync", "written in full beforehand + fdatasync (the pool)",
    "written larger beforehand, cut + fdatasync"};

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: bench-flush DIR [BYTES] [N]\n"), 2;
    const char *dir = argv[1];
    const long size = argc > 2 ? atol(argv[2]) : 525166;
    const int n = argc > 3 ? atoi(argv[3]) : 200;
    char *buf = malloc((size_t)size * 2);
    double *t = malloc(sizeof *t * (size_t)n);
    if (!buf || !t || size <= 0 || n <= 0) return 2;
    memset(buf, 7, (size_t)size * 2);
    for (int way = 0; way < N_WAYS; way++) {
        char p[4096], q[4096];
        for (int i = 0; i < n; i++) { /* files prepared ahead of time, on disk before the clock runs */
            snprintf(p, sizeof p, "%s/bench-flush-%d", dir, i);
            if (way < EMPTY_FSYNC) break;
            const int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) return perror(p), 1;
            if (way == FALLOCATED && fallocate(fd, 0, 0, size)) perror("fallocate");
            if (way == WRITTEN) put(fd, buf, size);
            if (way == WRITTEN_CUT) put(fd, buf, size + 65536);
            fsync(fd);
            close(fd);
        }
        sync();
        for (int i = 0; i < n; i++) {
            snprintf(p, sizeof p, "%s/bench-flush-%d", dir, i);
            snprintf(q, sizeof q, "%s/bench-flush-%d.done", dir, i);
            const double t0 = now();
            const int fd = way < EMPTY_FSYNC ? open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open(p, O_WRONLY);
            if (fd < 0) return perror(p), 1;
            put(fd, buf, size);
            if (way == WRITTEN_CUT && ftruncate(fd, size)) perror("ftruncate");
            if (way == NEW_FSYNC || way == EMPTY_FSYNC) fsync(fd);
            else if (way != NEW_NOSYNC) fdatasync(fd);
            close(fd);
            if (way < EMPTY_FSYNC) rename(p, q);
            t[i] = now() - t0;
        }
        for (int i = 0; i < n; i++) {
            snprintf(p, sizeof p, "%s/bench-flush-%d", dir, i);
            snprintf(q, sizeof q, "%s/bench-flush-%d.done", dir, i);
            unlink(p), unlink(q);
        }
        qsort(t, (size_t)n, sizeof *t, cmp);
        printf("%-52s median %.3f ms, p90 %.3f ms\n", kWay[way], t[n / 2] * 1e3, t[n * 9 / 10] * 1e3);
    }
    free(buf);
    free(t);
    return 0;
}
