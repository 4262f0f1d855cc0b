/* ingest_main.c - test driver: `aaclip-ingest convert|info ...` runs the real subcommands. */
#include <stdio.h>
#include <string.h>

#include "cmd_ingest.h"

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "convert")) return cmd_convert(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
    fprintf(stderr, "usage: aaclip-ingest convert|info ...\n");
    return 2;
}
