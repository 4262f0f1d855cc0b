/* test_tokenizer.c - CLIP BPE tokenizer: self-contained checks on a tiny merge list (cleaning,
 * pre-tokenising, BPE, truncation, errors, HF loader), then every golden case with both the
 * OpenAI .gz vocabulary and the Hugging Face vocab.json + merges.txt, and an encode timing. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "aaclip.h"
#include "testutil.h"

/* ------------------------------------------------------------------ tiny vocabulary */

/* Vocabulary id of byte b in bytes_to_unicode order: the 188 printable bytes, then the rest. */
static int byte_index(int b) {
    int idx = 0, printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    for (int c = 0; c < 256; c++) {
        int pc = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (printable ? (pc && c < b) : (pc || c < b)) idx++;
    }
    return idx;
}

static uint32_t byte_cp(int b) {
    int extra = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) extra++;
    return byte_index(b) < 188 ? (uint32_t)b : 256u + (uint32_t)extra;
}

/* Rules: he=512, ll=513, hell=514, hello</w>=515; then <sot>=516, <eot>=517. */
static const char tiny_merges[] = "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\n";
enum { TINY_SOT = 516, TINY_EOT = 517, TINY_N = 518 };

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; o[1] = 0; }
    else { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); o[2] = 0; }
}

/* HF vocab.json for the tiny vocabulary, every id mapped through N - 1 - id so that the test
 * sees the loader take ids from the file rather than from the OpenAI order. */
static void write_tiny_vocab_json(const char *path) {
    json_t *v = json_object();
    for (int b = 0; b < 256; b++) {
        char s[16];
        put_utf8(s, byte_cp(b));
        json_object_set_new(v, s, json_integer(TINY_N - 1 - byte_index(b)));
        strcat(s, "</w>");
        json_object_set_new(v, s, json_integer(TINY_N - 1 - (256 + byte_index(b))));
    }
    const char *rest[] = {"he", "ll", "hell", "hello</w>", "<|startoftext|>", "<|endoftext|>"};
    for (int i = 0; i < 6; i++)
        json_object_set_new(v, rest[i], json_integer(TINY_N - 1 - (512 + i)));
    if (json_dump_file(v, path, 0) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    json_decref(v);
}

/* Expected tiny-vocabulary ids for pre-tokens none of which contains "he" or "ll" (so no rule
 * applies): byte symbols, </w> on each piece's last byte. NULL-terminated list. */
static void expect_pieces(const char *const *pieces, int32_t want[AAC_CONTEXT_LENGTH]) {
    int n = 0;
    memset(want, 0, sizeof(int32_t) * AAC_CONTEXT_LENGTH);
    want[n++] = TINY_SOT;
    for (; *pieces; pieces++) {
        const unsigned char *p = (const unsigned char *)*pieces;
        size_t len = strlen(*pieces);
        if (!strcmp(*pieces, "<|endoftext|>")) { want[n++] = TINY_EOT; continue; }
        for (size_t i = 0; i < len; i++) want[n++] = byte_index(p[i]) + (i + 1 == len ? 256 : 0);
    }
    want[n] = TINY_EOT;
}

static int same_ids(const int32_t *a, const int32_t *b) {
    return memcmp(a, b, sizeof(int32_t) * AAC_CONTEXT_LENGTH) == 0;
}

static void print_ids(const char *label, const int32_t *ids) {
    fprintf(stderr, "    %s:", label);
    for (int i = 0; i < AAC_CONTEXT_LENGTH; i++) {
        fprintf(stderr, " %d", (int)ids[i]);
        if (ids[i] == 0 && i > 0 && ids[i - 1] == 0) break; /* padding */
    }
    fprintf(stderr, "\n");
}

static void check_pieces(const aac_tokenizer *tok, const char *text, const char *const *pieces) {
    int32_t got[AAC_CONTEXT_LENGTH], want[AAC_CONTEXT_LENGTH];
    aac_error err;
    CHECK_OK(aac_tokenizer_encode(tok, text, got, &err), &err);
    expect_pieces(pieces, want);
    CHECK(same_ids(got, want), "text '%s' pre-tokenised wrongly", text);
    if (!same_ids(got, want)) {
        print_ids("want", want);
        print_ids("got ", got);
    }
}

static void tiny_checks(const char *dir) {
    char merges[4096], vocab[4096], bad[4096];
    snprintf(merges, sizeof merges, "%s/tok_tiny_%d_merges.txt", dir, (int)getpid());
    snprintf(vocab, sizeof vocab, "%s/tok_tiny_%d_vocab.json", dir, (int)getpid());
    snprintf(bad, sizeof bad, "%s/tok_tiny_%d_bad.txt", dir, (int)getpid());
    write_file(merges, tiny_merges);
    write_tiny_vocab_json(vocab);

    aac_error err;
    aac_tokenizer *tok = NULL, *hf = NULL;
    CHECK_OK(aac_tokenizer_open_bpe(merges, &tok, &err), &err);
    CHECK_OK(aac_tokenizer_open_hf(vocab, merges, &hf, &err), &err);

    /* BPE: "hello" goes he, ll, hell, hello</w>; punctuation and case are split/folded. */
    int32_t ids[AAC_CONTEXT_LENGTH], want[AAC_CONTEXT_LENGTH] = {
        TINY_SOT, 515, 256 + byte_index(','), 515, 256 + byte_index('!'), TINY_EOT};
    CHECK_OK(aac_tokenizer_encode(tok, "Hello, HELLO!", ids, &err), &err);
    CHECK(same_ids(ids, want), "'Hello, HELLO!' -> %d %d %d %d %d %d", ids[0], ids[1], ids[2],
          ids[3], ids[4], ids[5]);
    /* "hellhello": each round merges every occurrence (he x2, ll x2, hell x2), then hello</w>. */
    int32_t want2[AAC_CONTEXT_LENGTH] = {TINY_SOT, 514, 515, 256 + byte_index('!'), TINY_EOT};
    CHECK_OK(aac_tokenizer_encode(tok, "hellhello!", ids, &err), &err);
    CHECK(same_ids(ids, want2), "'hellhello!' -> %d %d %d %d %d", ids[0], ids[1], ids[2], ids[3],
          ids[4]);

    /* Cleaning and pre-tokenising (expected pieces from CLIP's Python tokenizer). */
    check_pieces(tok, "", (const char *const[]){NULL});
    check_pieces(tok, "  \t\n ", (const char *const[]){NULL});
    check_pieces(tok, "  A&amp;amp;B\t\tC  ", (const char *const[]){"a", "&", "b", "c", NULL});
    check_pieces(tok, "&lt;b&gt;x&#39;s&#x41;&nbsp;z",
                 (const char *const[]){"<", "b", ">", "x", "'s", "a", "z", NULL});
    check_pieces(
        tok, "\xC3\x80\xC3\x89\xC3\x8E na\xC3\xAFve \xC4\xBF",
        (const char *const[]){"\xC3\xA0\xC3\xA9\xC3\xAE", "na\xC3\xAFve", "\xC5\x80", NULL});
    check_pieces(tok, "&ampx &notit; &#0; &#128;",
                 (const char *const[]){"&", "x", "\xC2\xAC", "it", ";", "\xEF\xBF\xBD",
                                       "\xE2\x82\xAC", NULL});
    check_pieces(tok, "a <|endoftext|> b", (const char *const[]){"a", "<|endoftext|>", "b", NULL});
    check_pieces(tok, "3.5mm", (const char *const[]){"3", ".", "5", "mm", NULL});
    check_pieces(tok, "\xC4\xB0", (const char *const[]){"i", "\xCC\x87", NULL});
    check_pieces(tok, "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 x",
                 (const char *const[]){"\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82", "x", NULL});
    check_pieces(tok, "\xE2\x84\xA6mega \xE2\x84\xAA",
                 (const char *const[]){"\xCF\x89mega", "k", NULL});

    /* Truncation: 100 words keep the first 75, with <eot> in the last slot. */
    char many[256] = "";
    for (int i = 0; i < 100; i++) strcat(many, "a ");
    CHECK_OK(aac_tokenizer_encode(tok, many, ids, &err), &err);
    int ok = ids[0] == TINY_SOT && ids[76] == TINY_EOT;
    for (int i = 1; i < 76; i++) ok &= ids[i] == 256 + byte_index('a');
    CHECK(ok, "100 words not cut to <sot> 75 ids <eot>");

    /* The HF loader takes the ids from vocab.json (reversed here). */
    const char *texts[] = {"Hello, HELLO!", "hellhello!", "a <|startoftext|> &amp; b", many, ""};
    for (int i = 0; i < 5; i++) {
        int32_t a[AAC_CONTEXT_LENGTH], b[AAC_CONTEXT_LENGTH];
        CHECK_OK(aac_tokenizer_encode(tok, texts[i], a, &err), &err);
        CHECK_OK(aac_tokenizer_encode(hf, texts[i], b, &err), &err);
        int same = 1;
        for (int k = 0; k < AAC_CONTEXT_LENGTH; k++) same &= b[k] == (a[k] ? TINY_N - 1 - a[k] : 0);
        CHECK(same, "HF ids differ from the OpenAI ids for '%.40s'", texts[i]);
    }

    /* Bad input. */
    CHECK(aac_tokenizer_encode(tok, "caf\xE9", ids, &err) == AAC_ERR_ARG, "invalid UTF-8 accepted");
    CHECK(strstr(err.message, "UTF-8") != NULL, "message: %s", err.message);
    CHECK(aac_tokenizer_encode(tok, NULL, ids, &err) == AAC_ERR_ARG, "NULL text accepted");
    CHECK(aac_tokenizer_encode(NULL, "x", ids, &err) == AAC_ERR_ARG, "NULL tokenizer accepted");
    aac_tokenizer_free(tok);
    aac_tokenizer_free(NULL);

    /* Bad files: each error names the file (and the line where there is one), and *out is
     * reset to NULL (t starts as a valid handle to see that). */
    aac_tokenizer *t = hf;
    const char *missing = "/nonexistent-aaclip-dir/bpe_simple_vocab_16e6.txt.gz";
    CHECK(aac_tokenizer_open_bpe(missing, &t, &err) == AAC_ERR_IO, "missing file: %s", err.message);
    CHECK(strstr(err.message, missing) != NULL && t == NULL, "message lacks the path: %s",
          err.message);
    write_file(bad, "#version: 0.2\nh e\nthree symbols here\n");
    CHECK(aac_tokenizer_open_bpe(bad, &t, &err) == AAC_ERR_FORMAT, "3-field line accepted");
    CHECK(strstr(err.message, bad) && strstr(err.message, ":3:"), "message: %s", err.message);
    write_file(bad, "h e\nl l\n");
    CHECK(aac_tokenizer_open_bpe(bad, &t, &err) == AAC_ERR_FORMAT, "header-less file accepted");
    CHECK(strstr(err.message, ":1:") != NULL, "message: %s", err.message);
    write_file(bad, "#version: 0.2\nh e\nhe\n");
    CHECK(aac_tokenizer_open_bpe(bad, &t, &err) == AAC_ERR_FORMAT, "1-field line accepted");
    CHECK(strstr(err.message, ":3:") != NULL, "message: %s", err.message);
    write_file(bad, "#version: 0.2\nh e\nxyz e\n");
    CHECK(aac_tokenizer_open_bpe(bad, &t, &err) == AAC_ERR_FORMAT, "unknown symbol accepted");
    CHECK(strstr(err.message, ":3:") && strstr(err.message, "xyz"), "message: %s", err.message);
    CHECK(aac_tokenizer_open_hf(missing, merges, &t, &err) == AAC_ERR_IO, "missing vocab.json");
    CHECK(strstr(err.message, missing) != NULL, "message lacks the path: %s", err.message);
    write_file(bad, "{\"a\": 0,");
    CHECK(aac_tokenizer_open_hf(bad, merges, &t, &err) == AAC_ERR_FORMAT, "bad JSON accepted");
    CHECK(strstr(err.message, bad) != NULL, "message: %s", err.message);
    write_file(bad, "{\"a\": 0, \"b\": 1}");
    CHECK(aac_tokenizer_open_hf(bad, merges, &t, &err) == AAC_ERR_MISSING, "byte symbols missing");
    CHECK(strstr(err.message, bad) != NULL && t == NULL, "message: %s", err.message);
    CHECK(aac_tokenizer_open_bpe(NULL, &t, &err) == AAC_ERR_ARG, "NULL path accepted");
    aac_tokenizer_free(hf);
    remove(merges);
    remove(vocab);
    remove(bad);
}

/* ------------------------------------------------------------------ golden cases */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs every case; returns the number that match, printing the first mismatches. */
static int run_cases(const aac_tokenizer *tok, const char *label, json_t *cases) {
    int pass = 0, shown = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *jids = json_object_get(c, "ids");
        int32_t want[AAC_CONTEXT_LENGTH] = {0}, got[AAC_CONTEXT_LENGTH];
        if (!text || json_array_size(jids) != AAC_CONTEXT_LENGTH) {
            CHECK(0, "case %zu is malformed", i);
            continue;
        }
        for (int k = 0; k < AAC_CONTEXT_LENGTH; k++)
            want[k] = (int32_t)json_integer_value(json_array_get(jids, (size_t)k));
        aac_error err;
        aac_status st = aac_tokenizer_encode(tok, text, got, &err);
        if (st == AAC_OK && same_ids(got, want)) {
            pass++;
            continue;
        }
        if (shown++ < 5) {
            fprintf(stderr, "[%s] case %zu '%.80s': %s\n", label, i, text,
                    st == AAC_OK ? "ids differ" : err.message);
            if (st == AAC_OK) {
                int k = 0;
                while (k < AAC_CONTEXT_LENGTH && got[k] == want[k]) k++;
                fprintf(stderr, "    first difference at position %d\n", k);
                print_ids("want", want);
                print_ids("got ", got);
            }
        }
    }
    return pass;
}

static void golden_checks(void) {
    const char *gz = TU_BPE_PATH; /* the repository's copy; ../shared/vocab holds the same file */
    const char *vj = tu_golden("hf/vocab.json");
    const char *mt = tu_golden("hf/merges.txt");
    const char *cj = tu_golden("tokenizer_cases.json");
    aac_error err;
    aac_tokenizer *bpe, *hf, *plain;
    double t0 = now_s();
    CHECK_OK(aac_tokenizer_open_bpe(gz, &bpe, &err), &err);
    double t1 = now_s();
    CHECK_OK(aac_tokenizer_open_hf(vj, mt, &hf, &err), &err);
    double t2 = now_s();
    CHECK_OK(aac_tokenizer_open_bpe(mt, &plain, &err), &err); /* merges.txt as a plain merge list */
    printf("load: bpe .gz %.1f ms, hf %.1f ms\n", 1e3 * (t1 - t0), 1e3 * (t2 - t1));

    json_error_t jerr;
    json_t *cases = json_load_file(cj, 0, &jerr);
    CHECK(cases && json_is_array(cases), "%s: %s", cj, jerr.text);
    if (!cases) return;
    int n = (int)json_array_size(cases);
    int p1 = run_cases(bpe, "bpe", cases), p2 = run_cases(hf, "hf", cases),
        p3 = run_cases(plain, "plain", cases);
    printf("golden cases: bpe %d/%d, hf %d/%d, plain merges %d/%d\n", p1, n, p2, n, p3, n);
    CHECK(n >= 600 && p1 == n && p2 == n && p3 == n, "golden mismatches");

    /* Timing: every case, several rounds. */
    const char **texts = malloc(sizeof *texts * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        texts[i] = json_string_value(json_object_get(json_array_get(cases, (size_t)i), "text"));
    int rounds = 20;
    int32_t ids[AAC_CONTEXT_LENGTH];
    double ta = now_s();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) aac_tokenizer_encode(bpe, texts[i], ids, &err);
    double tb = now_s();
    free(texts);
    printf("encode: %.2f us per prompt (mean over %d prompts x %d)\n",
           1e6 * (tb - ta) / (rounds * n), n, rounds);
    json_decref(cases);
    aac_tokenizer_free(bpe);
    aac_tokenizer_free(hf);
    aac_tokenizer_free(plain);
}

int main(void) {
    tiny_checks(AACLIP_BINARY_DIR);
    golden_checks(); /* ../shared/golden/tiny, else the reduced set in the repository (same files) */
    return tu_finish("test_tokenizer");
}
