/* cmd_train.h - the training, evaluation and phantom subcommands (cli/cmd_train.c,
 * cli/cmd_eval.c, cli/cmd_phantoms.c). argv[0] is the subcommand name; the return value is
 * the exit status (0 success, 1 failure, 2 usage error). */
#ifndef AAC_CMD_TRAIN_H
#define AAC_CMD_TRAIN_H
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_make_phantoms(int argc, char **argv);
int cmd_random_model(int argc, char **argv);
#endif
