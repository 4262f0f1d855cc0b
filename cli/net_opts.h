/* net_opts.h - options and log of the network commands (serve, pull, push). */
#ifndef AAC_CLI_NET_OPTS_H
#define AAC_CLI_NET_OPTS_H
#include "aaclip_net.h"
#include "cli.h"

typedef struct net_opts {
    const char *aet;   /* NULL: AACLIP */
    int timeout_s;     /* 0: 30 */
    aac_net_tls tls;
    cli_logger log;
} net_opts;

/* Like score_opts_parse: 1 consumed, -1 bad value (printed), 0 not a network option. Also takes
 * --json and --quiet. */
int net_opts_parse(net_opts *o, const char *cmd, int argc, char **argv, int *i);
int net_opts_check(const net_opts *o, const char *cmd);
void net_opts_help(const char *aet_what);
/* aac_net_scu_params.log / aac_node_params.log; user is a cli_logger. */
void net_log(void *user, const char *event, const char *subject, const char *message);
#endif
