/*
 * cli.h — subcommands of `tunnel` other than run/version/help.
 */
#ifndef TNL_CLI_H
#define TNL_CLI_H

#include <lua.h>

/* Dispatch `tunnel CMD ...` (argv[0] is CMD). Returns the exit status. */
int tnl_cli_other(const char *cmd, int argc, char **argv);

/* ca init, keygen, cert issue|show; -1 if cmd is none of them. */
int tnl_cli_pki(const char *cmd, int argc, char **argv);
/* token secret|issue|verify|bootstrap|list|revoke (argv[0] is "token"). */
int tnl_cli_token(int argc, char **argv);
/* tunnel enroll --relay HOST:PORT --token T --name N --out DIR (cmd_enroll.c). */
int tnl_cli_enroll(int argc, char **argv);
/* tunnel run --workers N: supervise N forked workers. Returns -1 in a worker
 * (which then serves), else the parent's exit status. */
int tnl_workers_run(int n);
extern int tnl_worker_index;

/* Run a subcommand written in Lua: module.main(args) -> exit status. */
int tnl_cli_lua(const char *module, int argc, char **argv);
/* package.path for the tunnel library and policies, plus script_dir; and
 * package.preload.tunnel (main.c). */
void tnl_cli_set_paths(lua_State *L, const char *script_dir);

#endif
