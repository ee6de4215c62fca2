/*
 * entry.h — public entries: listeners whose connections are sniffed and routed.
 *
 * Glossary
 *   cfg     what one tunnel.listen{} declared (options + the route hook), bound
 *           to the ctx that declared it. Reference-counted: the live entry holds
 *           one reference, every connection accepted under it another, so a
 *           reload never changes the hooks of a connection mid-way.
 *   entry   a live listening socket plus its current cfg.
 *   commit  make a ctx's declarations live (reload): entries whose address is
 *           declared again keep their socket and take the new cfg; new ones
 *           are bound (any failure undoes this commit's binds and leaves the
 *           running set untouched); the rest are closed. Open connections are
 *           never touched.
 */
#ifndef TNL_ENTRY_H
#define TNL_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lua/ctx.h"

struct tnl_service;
#include "net/listener.h"
#include "util/addr.h"

enum tnl_on_timeout { TNL_TIMEOUT_CLOSE = 0, TNL_TIMEOUT_OPAQUE = 1 };

enum { TNL_NAME_MAX = 64 };

struct tnl_entry_cfg {
    struct tnl_entry_cfg *next_decl;    /* in ctx->decls while not committed */
    int refs;
    struct tnl_ctx *ctx;                /* referenced */
    int route_ref;                      /* owned, in ctx's registry */
    uint64_t handle;                    /* the Lua handle returned by tunnel.listen */
    char name[TNL_NAME_MAX];
    char addr[TNL_ADDR_HOST_MAX + 8];   /* as declared */
    struct sockaddr_storage bind;
    socklen_t bindlen;
    size_t peek_max;
    double sniff_timeout;
    enum tnl_on_timeout on_timeout;
    int no_sniff;                       /* route at once on accept, as opaque */
    uint64_t relay;                     /* handle of the relay whose public entry this is, 0 if none */
    uint8_t token_secret[256];          /* HTTP clients may present a Bearer token (token_len > 0); wiped on free */
    size_t token_len;
    int token_required;                 /* refuse (401) a request without a valid token */
    struct tnl_service *service;        /* a tcp service's own port: every connection goes there (referenced) */
    int proxy_protocol;                 /* expect a PROXY header from a load balancer */
    int send_proxy;                     /* send a PROXY v2 header to the upstream */
    double connect_timeout;
    double idle_timeout;                /* close a spliced connection idle this long (0: never) */
};

struct tnl_entry {
    struct tnl_entry *next;
    uint64_t handle;
    int dynamic;                        /* opened by the runtime (a service port), not by the script */
    struct tnl_listener l;
    struct tnl_entry_cfg *cfg;          /* referenced */
};

extern struct tnl_entry *tnl_entries;

/* A cfg with defaults, referencing ctx; NULL if out of memory. */
struct tnl_entry_cfg *tnl_entry_cfg_new(struct tnl_ctx *ctx);
void tnl_entry_cfg_ref(struct tnl_entry_cfg *cfg);
void tnl_entry_cfg_unref(struct tnl_entry_cfg *cfg);

/* Staging ctx: record. Live ctx: bind now. Takes the caller's reference.
 * Returns 0, or -errno with a message in err. */
int tnl_entry_declare(struct tnl_entry_cfg *cfg, char *err, size_t cap);

/* Bind now an entry the runtime needs (a relay's tcp service port); reloads
 * leave it alone. Takes its own reference on cfg. NULL with err on failure. */
struct tnl_entry *tnl_entry_open_dynamic(struct tnl_entry_cfg *cfg, char *err, size_t cap);

/* Make ctx's declarations the running set (see the glossary), in two
 * phases so that a reload is all-or-nothing across every kind of object:
 * prepare binds the new sockets (nothing changes on failure), then either
 * apply (cannot fail) or abort. lua/commit.c orchestrates. */
int tnl_entries_prepare(struct tnl_ctx *ctx, struct tnl_entry **opened, char *err, size_t cap);
void tnl_entries_apply(struct tnl_ctx *ctx, struct tnl_entry *opened);
void tnl_entries_abort(struct tnl_entry *opened);

/* Free declarations that were never committed. */
void tnl_entry_decls_free(struct tnl_ctx *ctx);

struct tnl_entry *tnl_entry_by_handle(uint64_t handle);
struct tnl_entry_cfg *tnl_entry_decl_by_handle(struct tnl_ctx *ctx, uint64_t handle);
void tnl_entry_close(struct tnl_entry *e);

/* A connection accepted on e is offered to the filter first (tunnel run
 * --workers hands it to a sibling, cli/pack.c): 1 means it took fd, 0 that
 * it is served here. NULL: always here. */
extern int (*tnl_entry_accept_filter)(struct tnl_entry *e, int fd, const struct sockaddr *peer, socklen_t plen);
/* Called with each listener just opened, static or dynamic (tunnel run
 * --workers steers its connections, net/steer.h). NULL: nothing. */
extern void (*tnl_entry_listen_hook)(struct tnl_entry *e);
/* Serve a connection accepted on e (or handed over for it). */
void tnl_entry_serve(struct tnl_entry *e, int fd, const struct sockaddr *peer, socklen_t plen);
/* The open entry of that name bound to that address, or NULL. */
struct tnl_entry *tnl_entry_find(const char *name, const struct sockaddr_storage *bind, socklen_t bindlen);

/* Stop accepting everywhere (drain). */
void tnl_entries_close_all(void);

uint64_t tnl_entry_new_handle(void);

#endif
