/*
 * commands.c — dispatch of the `tunnel` subcommands beyond run/version/help.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int tnl_cli_other(const char *cmd, int argc, char **argv)
{
    int rc = tnl_cli_pki(cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (strcmp(cmd, "token") == 0)
        return tnl_cli_token(argc, argv);
    if (strcmp(cmd, "enroll") == 0)
        return tnl_cli_enroll(argc, argv);
    if (strcmp(cmd, "status") == 0)
        return tnl_cli_lua("tunnel.status", argc - 1, argv + 1);
    fprintf(stderr, "tunnel: unknown command '%s' (try 'tunnel help')\n", cmd);
    return 2;
}
