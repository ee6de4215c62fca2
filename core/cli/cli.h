/*
 * cli.h — subcommands of `tunnel` other than run/version/help.
 */
#ifndef TNL_CLI_H
#define TNL_CLI_H

/* Dispatch `tunnel CMD ...` (argv[0] is CMD). Returns the exit status. */
int tnl_cli_other(const char *cmd, int argc, char **argv);

/* ca init, keygen, cert issue|show; -1 if cmd is none of them. */
int tnl_cli_pki(const char *cmd, int argc, char **argv);

#endif
