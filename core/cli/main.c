/*
 * main.c — the `tunnel` command.
 *
 *   tunnel run [--check] [--watch] [--log-level L] [--drain SECONDS] SCRIPT [ARG...]
 *   tunnel version
 *   tunnel help
 *
 * `run` loads SCRIPT in a fresh Lua state (a staging ctx: declarations are
 * recorded, not yet live), commits what it declared, then serves until
 * SIGTERM/SIGINT have drained it. SIGHUP, or a change of SCRIPT under --watch,
 * repeats load + commit; a script that fails either step leaves the running
 * one in force.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>

#include "cli/cli.h"
#include "cli/pack.h"
#include "loop/loop.h"
#include "lua/commit.h"
#include "lua/hook.h"
#include "lua/settings.h"
#include "net/sock.h"
#include "lua/module.h"
#include "agent/agent.h"
#include "relay/relay.h"
#include "router/entry.h"
#include "util/log.h"
#include "util/str.h"

static struct {
    const char *script;
    int check;
    int watch;
    int workers;
    int argc;
    char **argv;
    char share[PATH_MAX];
    ev_stat stat;
    ev_timer debounce;
} opt;

/* Where lua/ and policies/ are: the source tree when the binary runs from
 * build/, else PREFIX/share/tunnel; $TUNNEL_HOME overrides both. */
static void find_share(void)
{
    char exe[PATH_MAX], probe[PATH_MAX + 32];
    const char *env = getenv("TUNNEL_HOME");
    if (env && *env) {
        tnl_strlcpy(opt.share, env, sizeof opt.share);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *dir = dirname(exe);
        snprintf(probe, sizeof probe, "%s/../lua/tunnel/api.lua", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(probe, sizeof probe, "%s/..", dir);
            if (realpath(probe, opt.share))
                return;
        }
    }
    snprintf(opt.share, sizeof opt.share, "%s/share/tunnel", TNL_PREFIX);
}

static void set_paths(lua_State *L, const char *script)
{
    char copy[PATH_MAX];
    tnl_strlcpy(copy, script, sizeof copy);
    tnl_cli_set_paths(L, dirname(copy));
}

void tnl_cli_set_paths(lua_State *L, const char *dir)
{
    if (!opt.share[0])
        find_share();
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/lua/?.lua;%s/?.lua;%s", dir, opt.share, opt.share,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_tunnel);
    lua_setfield(L, -2, "tunnel");
    lua_pop(L, 2);
}

static void set_arg(lua_State *L)
{
    lua_createtable(L, opt.argc, 1);
    lua_pushstring(L, opt.script);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < opt.argc; i++) {
        lua_pushstring(L, opt.argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
}

/* Script errors name file:line already; the full traceback is for debug. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (tnl_log_level > TNL_LOG_DEBUG) {
        lua_pushstring(L, msg ? msg : "(error object is not a string)");
        return 1;
    }
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Load the script into a new staging ctx. NULL (and err) if it failed. */
static struct tnl_ctx *load_script(char *err, size_t cap)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    luaL_openlibs(L);
    /* Hooks run under an instruction budget; compiled traces would skip it. */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    set_paths(L, opt.script);
    set_arg(L);
    struct tnl_ctx *ctx = tnl_ctx_new(L, 1);
    if (!ctx) {
        lua_close(L);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    ctx->staging = 1;
    ctx->check_only = opt.check;
    tnl_strlcpy(ctx->script, opt.script, sizeof ctx->script);
    lua_pushcfunction(L, traceback);
    int rc = luaL_loadfile(L, opt.script);
    if (rc == 0)
        rc = lua_pcall(L, 0, 0, -2);
    if (rc != 0) {
        snprintf(err, cap, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "script failed");
        tnl_commit_discard(ctx);
        tnl_ctx_unref(ctx);
        return NULL;
    }
    lua_settop(L, 0);
    return ctx;
}

/* Commit a loaded ctx; on failure it is dropped and the running one stays. */
static int commit(struct tnl_ctx *ctx, char *err, size_t cap)
{
    int rc = tnl_commit(ctx, err, cap);
    if (rc < 0) {
        tnl_commit_discard(ctx);
        tnl_ctx_unref(ctx);
        return rc;
    }
    ctx->staging = 0;
    tnl_ctx_set_current(ctx);
    tnl_ctx_unref(ctx);
    return 0;
}

static void reload(void *arg)
{
    (void)arg;
    char err[2048];
    struct tnl_log l;
    unsigned old = tnl_ctx_current ? tnl_ctx_current->generation : 0;
    struct tnl_ctx *ctx = load_script(err, sizeof err);
    int ok = ctx && commit(ctx, err, sizeof err) == 0;
    if (tnl_log_begin(&l, ok ? TNL_LOG_INFO : TNL_LOG_ERROR, "reload")) {
        tnl_log_str(&l, "script", opt.script);
        tnl_log_bool(&l, "ok", ok);
        if (ok)
            tnl_log_uint(&l, "generation", tnl_ctx_current->generation);
        else {
            tnl_log_str(&l, "error", err);
            tnl_log_str(&l, "msg", "the running script stays in force");
            tnl_log_uint(&l, "generation", old);
        }
        tnl_log_end(&l);
    }
}

static void debounce_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)w; (void)revents;
    reload(NULL);
}

/* Editors save in bursts (truncate, write, rename): reload once it settles. */
static void stat_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
    (void)loop; (void)revents;
    if (w->attr.st_nlink == 0)
        return;
    ev_timer_stop(tnl_ev, &opt.debounce);
    ev_timer_set(&opt.debounce, 0.2, 0);
    ev_timer_start(tnl_ev, &opt.debounce);
}

static void print_shape(const char *what, const struct tnl_shaper_cfg *c)
{
    if (c->rate <= 0)
        return;
    printf("       %s limit %.0f bytes/s each way", what, c->rate);
    if (c->quota > 0)
        printf(", quota %.0f bytes per %gs then %.0f bytes/s", c->quota, c->window > 0 ? c->window : 3600,
               c->trickle > 0 ? c->trickle : 65536);
    printf("\n");
}

static void print_check(struct tnl_ctx *ctx)
{
    printf("%s: ok\n", opt.script);
    for (struct tnl_relay_cfg *r = ctx->relay_decls; r; r = r->next_decl) {
        printf("relay  %-12s %-22s agents over mutual TLS 1.3, grace %gs\n", r->name, r->addr, r->grace);
        print_shape("session", &r->shape_session);
        print_shape("service", &r->shape_service);
    }
    for (struct tnl_entry_cfg *d = ctx->decls; d; d = d->next_decl) {
        char where[256] = "by exposed name";
        if (d->route_ref != LUA_NOREF)
            tnl_hook_where(ctx, d->route_ref, where, sizeof where);
        printf("listen %-12s %-22s sniff %s%zu bytes / %gs%s%s  route %s\n", d->name, d->addr,
               d->no_sniff ? "off, " : "", d->peek_max, d->sniff_timeout,
               d->proxy_protocol ? ", proxy_protocol" : "", d->send_proxy ? ", send_proxy" : "", where);
    }
    for (struct tnl_agent_cfg *a = ctx->agent_decls; a; a = a->next_decl) {
        printf("agent  %-12s relays", a->name);
        for (int i = 0; i < a->nrelays; i++)
            printf(a->relays[i].bracketed ? " [%s]:%u" : " %s:%u", a->relays[i].host, a->relays[i].port);
        printf(", %d service%s\n", a->nservices, a->nservices == 1 ? "" : "s");
        for (int i = 0; i < a->nservices; i++)
            printf("       service %-12s -> %s:%u%s\n", a->services[i].name, a->services[i].target.host,
                   a->services[i].target.port, a->services[i].send_proxy ? " (send_proxy)" : "");
    }
    for (int i = 0; i < ctx->nsniffers; i++)
        printf("sniffer %s\n", ctx->sniffers[i].name);
    if (!ctx->decls && !ctx->relay_decls && !ctx->agent_decls)
        printf("(nothing declared)\n");
}

/* A relay holds a descriptor per public connection and an agent one per
 * stream: raise the soft limit to the hard one, as servers usually do. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int usage_run(void)
{
    fprintf(stderr, "usage: tunnel run [--check] [--watch] [--log-level LEVEL] [--drain SECONDS] SCRIPT [ARG...]\n");
    return 2;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "check", no_argument, NULL, 'c' },
        { "watch", no_argument, NULL, 'w' },
        { "log-level", required_argument, NULL, 'l' },
        { "drain", required_argument, NULL, 'd' },
        { "workers", required_argument, NULL, 'W' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+cwl:d:W:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': opt.check = 1; break;
        case 'w': opt.watch = 1; break;
        case 'l':
            if (tnl_log_level_parse(optarg, &tnl_log_level) < 0) {
                fprintf(stderr, "tunnel: --log-level must be debug, info, warn, error or off\n");
                return 2;
            }
            break;
        case 'd': {
            char *end;
            tnl_drain_timeout = strtod(optarg, &end);
            if (*end || tnl_drain_timeout < 0) {
                fprintf(stderr, "tunnel: --drain takes a number of seconds\n");
                return 2;
            }
            break;
        }
        case 'W': {
            char *end;
            long n = strcmp(optarg, "auto") == 0 ? sysconf(_SC_NPROCESSORS_ONLN) : strtol(optarg, &end, 10);
            if ((strcmp(optarg, "auto") != 0 && *end) || n < 1 || n > 64) {
                fprintf(stderr, "tunnel: --workers takes a number from 1 to 64, or auto\n");
                return 2;
            }
            opt.workers = (int)n;
            break;
        }
        default: return usage_run();
        }
    }
    if (optind >= argc)
        return usage_run();
    opt.script = argv[optind];
    opt.argc = argc - optind - 1;
    opt.argv = argv + optind + 1;
    if (access(opt.script, R_OK) != 0) {
        fprintf(stderr, "tunnel: cannot read %s: %s\n", opt.script, strerror(errno));
        return 1;
    }
    find_share();
    raise_nofile();
    /* Every send says MSG_NOSIGNAL; splice(2) cannot (net/pipe.h): a peer
     * that is gone is an EPIPE to handle, never a signal that kills us. */
    signal(SIGPIPE, SIG_IGN);
    if (opt.workers > 1 && !opt.check) {
        int rc = tnl_workers_run(opt.workers);
        if (rc >= 0)
            return rc;          /* the supervising parent is done */
        tnl_sock_reuseport = 1; /* a worker: share the ports with its siblings */
        tnl_log_worker = tnl_worker_index;
    }
    tnl_defaults.log_level = tnl_log_level;     /* --log-level: what scripts start from */
    tnl_defaults.drain_timeout = tnl_drain_timeout;
    tnl_defaults.mgmt_on = tnl_worker_index <= 1;   /* worker 1 serves management */
    if (tnl_runtime_init() < 0) {
        fprintf(stderr, "tunnel: cannot create the event loop\n");
        return 1;
    }
    if (tnl_worker_index > 0)
        tnl_pack_start(tnl_worker_index);

    char err[2048];
    struct tnl_ctx *ctx = load_script(err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "tunnel: %s\n", err);
        return 1;
    }
    if (tnl_worker_index && (ctx->relay_decls || ctx->agent_decls)) {
        fprintf(stderr, "tunnel: --workers serves router scripts only: relays and agents keep per-process "
                        "state (sessions, exposed names)\n");
        return 1;
    }
    if (ctx->self_driven) {
        /* The script served by itself (tunnel.run / tunnel.step) and has ended. */
        tnl_ctx_unref(ctx);
        return 0;
    }
    if (opt.check) {
        print_check(ctx);
        tnl_commit_discard(ctx);
        tnl_ctx_unref(ctx);
        return 0;
    }
    if (commit(ctx, err, sizeof err) < 0) {
        fprintf(stderr, "tunnel: %s\n", err);
        return 1;
    }
    tnl_loop_set_reload(reload, NULL);
    tnl_loop_handle_signals(1);
    if (opt.watch) {
        ev_timer_init(&opt.debounce, debounce_cb, 0.2, 0);
        ev_stat_init(&opt.stat, stat_cb, opt.script, 0.5);
        ev_stat_start(tnl_ev, &opt.stat);
    }
    tnl_logf(TNL_LOG_INFO, "start", "tunnel %s running %s (pid %d)", TNL_VERSION, opt.script, (int)getpid());
    tnl_loop_run();
    if (opt.watch)
        ev_stat_stop(tnl_ev, &opt.stat);
    tnl_loop_handle_signals(0);
    tnl_runtime_shutdown();
    tnl_logf(TNL_LOG_INFO, "exit", "tunnel stopped");
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "tunnel %s — a Lua-scriptable tunnel runtime\n\n"
            "usage:\n"
            "  tunnel run [options] SCRIPT [ARG...]   run a relay, agent or router script\n"
            "      --check            load and validate SCRIPT, print what it would listen on, exit\n"
            "      --watch            reload when SCRIPT changes (as SIGHUP does)\n"
            "      --log-level LEVEL  debug, info (default), warn, error or off\n"
            "      --drain SECONDS    how long SIGTERM waits for open connections (default 30)\n"
            "      --workers N|auto   N processes share the router's ports (SO_REUSEPORT); routers only\n"
            "  tunnel version                        print the version\n"
            "  tunnel help                           this text\n\n"
            "Signals: SIGTERM/SIGINT drain and exit 0 (a second one exits at once);\n"
            "SIGHUP reloads SCRIPT, keeping the running one if the new one fails.\n"
            "Docs: README.md, docs/ (hooks, sniffers, operations).\n",
            TNL_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tunnel %s (%s, OpenSSL, libsodium, libev)\n", TNL_VERSION, LUAJIT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    return tnl_cli_other(cmd, argc - 1, argv + 1);
}
