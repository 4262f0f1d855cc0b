/* cmd_sample.h - `aaclip make-sample-study` (cli/cmd_sample.c). */
#ifndef AAC_CMD_SAMPLE_H
#define AAC_CMD_SAMPLE_H

/* argv[0] is the subcommand name; returns 0 success, 1 failure, 2 usage error. */
int cmd_make_sample_study(int argc, char **argv);

#endif
