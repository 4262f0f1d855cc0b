/* test_cli_bench.c - `aaclip bench` on the tiny shape prints its summary line with sane values. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

int main(void) {
    FILE *p = popen(AACLIP_EXE " bench --config tiny --reps 1 --threads 2 2>&1", "r");
    CHECK(p != NULL, "popen");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bench failed: %s", buf);
    const char *line = strstr(buf, "bench: config=tiny size=518 threads=2 ");
    CHECK(line != NULL, "summary line missing: %s", buf);
    if (line) {
        double s, gf, sg, eff, rss;
        int k = sscanf(strstr(line, "s_per_slice="),
                       "s_per_slice=%lf gflops=%lf sgemm_gflops=%lf efficiency=%lf peak_rss_mib=%lf",
                       &s, &gf, &sg, &eff, &rss);
        CHECK(k == 5, "cannot parse: %s", line);
        CHECK(s > 0 && s < 60 && gf > 0 && sg > 0 && eff > 0 && eff < 10 && rss > 1, "values: %s", line);
        CHECK(fabs(eff - gf / sg) < 0.01, "efficiency is not gflops / sgemm_gflops: %s", line);
    }
    FILE *q = popen(AACLIP_EXE " bench --config nope 2>&1", "r");
    n = fread(buf, 1, sizeof buf - 1, q);
    buf[n] = '\0';
    st = pclose(q);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(buf, "nope"), "bad config accepted: %s", buf);
    return tu_finish("test_cli_bench");
}
