/*
 * commands.c — dispatch of the `tunnel` subcommands beyond run/version/help.
 */
#include "cli/cli.h"

#include <stdio.h>

int tnl_cli_other(const char *cmd, int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "tunnel: unknown command '%s' (try 'tunnel help')\n", cmd);
    return 2;
}
