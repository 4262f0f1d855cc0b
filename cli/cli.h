/* cli.h - shared pieces of the aaclip command line. */
#ifndef AAC_CLI_H
#define AAC_CLI_H
#include "aaclip.h"
#include "aaclip_score.h"

/* Each subcommand: argv[0] is the subcommand name. Returns the process exit status
 * (0 success, 1 failure, 2 usage error). */
int cmd_dump(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_plugins(int argc, char **argv);

/* Options shared by every command that opens a model. */
typedef struct model_opts {
    const char *clip, *adapters, *tokenizer;
    const char *bundle; /* --model: a model bundle (excludes --clip / --adapters) */
    aac_model_params params;
} model_opts;

/* If argv[*i] is a model option, consumes it (and its value) and returns 1; returns -1 on a
 * bad value (message printed), 0 when the option is not a model option. */
int model_opts_parse(model_opts *o, int argc, char **argv, int *i);
void model_opts_help(void);
/* --backend NAME|auto and --precision f32|bf16 (part of the model options; bench uses them
 * alone): same contract as model_opts_parse. */
int backend_opts_parse(aac_model_params *p, int argc, char **argv, int *i);
void backend_opts_help(void);
/* Checks the combination (--model, or --clip [--adapters]); prints the problem and returns -1. */
int model_opts_check(const model_opts *o, const char *cmd, int need_adapters);
/* Opens the model (bundle or files) and its tokenizer (--tokenizer, else the bundle's, else the
 * shipped one); on failure prints the error and returns -1. */
int model_opts_open(const model_opts *o, aac_model **m, aac_tokenizer **tok);
/* Default tokenizer file shipped with aaclip. */
const char *default_tokenizer_path(void);
/* The bundled demo model (synthetic, not for clinical use). */
const char *default_demo_model_path(void);
/* 1 when the options change the model as stored (tokenizer, image size, head widths,
 * activation): a bundle's calibration does not hold then. */
int model_opts_overridden(const model_opts *o);
/* Applies --threads (the engine's OpenMP pool; OpenBLAS itself runs single-threaded). */
void set_threads(int n);
/* Parses a positive integer option value; prints an error naming the option on failure. */
int parse_int(const char *opt, const char *s, int lo, int hi, int *out);

/* If argv[*i] is a scoring option (--class-text, --domain, --window, --threshold, --formats,
 * ...), consumes it (and its value) into p and returns 1; -1 on a bad value (message printed,
 * naming cmd); 0 when it is not one. */
int score_opts_parse(aac_score_params *p, const char *cmd, int argc, char **argv, int *i);
void score_opts_help(void);

/* Log lines of the scoring commands: "aaclip: SERIES: message" (errors even with quiet), or
 * one JSON object per line {"event", "series", "message"} on stderr. */
typedef struct cli_logger {
    int json, quiet;
} cli_logger;
void cli_log(const cli_logger *l, const char *event, const char *series, const char *msg);
/* aac_score_params.log callback; user is a cli_logger. */
void cli_log_score_event(void *user, aac_score_event ev, const char *series, const char *message);
#endif
