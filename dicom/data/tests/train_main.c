/* train_main.c - test-only driver for the train, eval and make-phantoms subcommands. */
#include <stdio.h>
#include <string.h>

#include "cmd_train.h"

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "make-phantoms")) return cmd_make_phantoms(argc - 1, argv + 1);
    if (!strcmp(cmd, "random-model")) return cmd_random_model(argc - 1, argv + 1);
    fprintf(stderr, "usage: aaclip-train train|eval|make-phantoms|random-model ...\n");
    return 2;
}
