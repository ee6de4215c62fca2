/*
 * entry.c — the registry of public entries and the reload commit (see entry.h).
 */
#include "router/entry.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <sodium.h>

#include "relay/relay.h"
#include "router/conn.h"
#include "util/log.h"

struct tnl_entry *tnl_entries;
static uint64_t next_handle;

uint64_t tnl_entry_new_handle(void)
{
    return ++next_handle;
}

struct tnl_entry_cfg *tnl_entry_cfg_new(struct tnl_ctx *ctx)
{
    struct tnl_entry_cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->refs = 1;
    cfg->ctx = ctx;
    if (ctx)
        tnl_ctx_ref(ctx);
    cfg->route_ref = LUA_NOREF;
    cfg->handle = tnl_entry_new_handle();
    cfg->peek_max = 16384;
    cfg->sniff_timeout = 5.0;
    cfg->connect_timeout = 5.0;
    cfg->idle_timeout = 3600;
    return cfg;
}

void tnl_entry_cfg_ref(struct tnl_entry_cfg *cfg)
{
    cfg->refs++;
}

void tnl_entry_cfg_unref(struct tnl_entry_cfg *cfg)
{
    if (!cfg || --cfg->refs > 0)
        return;
    if (cfg->ctx) {
        tnl_ctx_unref_value(cfg->ctx, cfg->route_ref);
        tnl_ctx_unref(cfg->ctx);
    }
    if (cfg->service)
        tnl_service_unref(cfg->service, 0, 0);
    sodium_memzero(cfg->token_secret, sizeof cfg->token_secret);
    free(cfg);
}

/* A listener bound to one address accepts only on that one. */
static int wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 1;
}

int (*tnl_entry_accept_filter)(struct tnl_entry *e, int fd, const struct sockaddr *peer, socklen_t plen);
void (*tnl_entry_listen_hook)(struct tnl_entry *e);

void tnl_entry_serve(struct tnl_entry *e, int fd, const struct sockaddr *peer, socklen_t plen)
{
    tnl_conn_accept(e->cfg, fd, peer, plen, wildcard(&e->l.addr) ? NULL : (const struct sockaddr *)&e->l.addr);
}

static void on_accept(struct tnl_listener *l, int fd, const struct sockaddr *peer, socklen_t plen)
{
    struct tnl_entry *e = l->owner;
    if (tnl_entry_accept_filter && !e->dynamic && tnl_entry_accept_filter(e, fd, peer, plen))
        return;
    tnl_entry_serve(e, fd, peer, plen);
}

static int same_addr(const struct sockaddr_storage *a, socklen_t alen,
                     const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

struct tnl_entry *tnl_entry_find(const char *name, const struct sockaddr_storage *bind, socklen_t bindlen)
{
    for (struct tnl_entry *e = tnl_entries; e; e = e->next)
        if (!e->dynamic && e->l.fd >= 0 && strcmp(e->cfg->name, name) == 0 &&
            same_addr(&e->cfg->bind, e->cfg->bindlen, bind, bindlen))
            return e;
    return NULL;
}

static void log_listen(const char *event, struct tnl_entry *e)
{
    struct tnl_log l;
    if (!tnl_log_begin(&l, TNL_LOG_INFO, event))
        return;
    tnl_log_str(&l, "listener", e->cfg->name);
    tnl_log_str(&l, "addr", e->l.addr_str);
    tnl_log_end(&l);
}

/* Bind a new entry for cfg (takes a reference on success). */
static struct tnl_entry *entry_open(struct tnl_entry_cfg *cfg, char *err, size_t cap)
{
    struct tnl_entry *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    int rc = tnl_listener_open(&e->l, (struct sockaddr *)&cfg->bind, cfg->bindlen, on_accept, e);
    if (rc < 0) {
        snprintf(err, cap, "listener '%s': cannot listen on %s: %s", cfg->name, cfg->addr, strerror(-rc));
        free(e);
        return NULL;
    }
    e->cfg = cfg;
    tnl_entry_cfg_ref(cfg);
    e->handle = cfg->handle;
    if (tnl_entry_listen_hook)
        tnl_entry_listen_hook(e);
    return e;
}

void tnl_entry_close(struct tnl_entry *e)
{
    struct tnl_entry **pp = &tnl_entries;
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    log_listen("listen_close", e);
    tnl_listener_close(&e->l);
    if (e->cfg->service && e->cfg->service->port_entry == e)
        e->cfg->service->port_entry = NULL;     /* a tcp service's port, closed by a drain */
    tnl_entry_cfg_unref(e->cfg);
    free(e);
}

static void link_entry(struct tnl_entry *e)
{
    struct tnl_entry **pp = &tnl_entries;
    while (*pp)
        pp = &(*pp)->next;
    e->next = NULL;
    *pp = e;
}

struct tnl_entry *tnl_entry_open_dynamic(struct tnl_entry_cfg *cfg, char *err, size_t cap)
{
    struct tnl_entry *e = entry_open(cfg, err, cap);
    if (!e)
        return NULL;
    e->dynamic = 1;
    link_entry(e);
    log_listen("listen", e);
    return e;
}

int tnl_entry_declare(struct tnl_entry_cfg *cfg, char *err, size_t cap)
{
    struct tnl_ctx *ctx = cfg->ctx;
    for (struct tnl_entry_cfg *d = ctx->decls; d; d = d->next_decl) {
        if (same_addr(&d->bind, d->bindlen, &cfg->bind, cfg->bindlen)) {
            snprintf(err, cap, "listener '%s': address %s is already declared by listener '%s'",
                     cfg->name, cfg->addr, d->name);
            tnl_entry_cfg_unref(cfg);
            return -EADDRINUSE;
        }
    }
    if (ctx->staging) {
        struct tnl_entry_cfg **pp = &ctx->decls;
        while (*pp)
            pp = &(*pp)->next_decl;
        *pp = cfg;
        return 0;
    }
    struct tnl_entry *e = entry_open(cfg, err, cap);
    tnl_entry_cfg_unref(cfg);
    if (!e)
        return -EADDRNOTAVAIL;
    link_entry(e);
    log_listen("listen", e);
    return 0;
}

static struct tnl_entry *find_live(const struct tnl_entry_cfg *cfg)
{
    for (struct tnl_entry *e = tnl_entries; e; e = e->next)
        if (!e->dynamic && (same_addr(&e->l.addr, e->l.addrlen, &cfg->bind, cfg->bindlen) ||
            same_addr(&e->cfg->bind, e->cfg->bindlen, &cfg->bind, cfg->bindlen)))
            return e;
    return NULL;
}

/* Phase 1 of a commit: bind what is new. On failure nothing changed. */
int tnl_entries_prepare(struct tnl_ctx *ctx, struct tnl_entry **opened, char *err, size_t cap)
{
    *opened = NULL;
    for (struct tnl_entry_cfg *d = ctx->decls; d; d = d->next_decl) {
        if (find_live(d))
            continue;
        struct tnl_entry *e = entry_open(d, err, cap);
        if (!e) {
            tnl_entries_abort(*opened);
            *opened = NULL;
            return -EADDRNOTAVAIL;
        }
        e->next = *opened;
        *opened = e;
    }
    return 0;
}

void tnl_entries_abort(struct tnl_entry *opened)
{
    while (opened) {
        struct tnl_entry *next = opened->next;
        tnl_listener_close(&opened->l);
        tnl_entry_cfg_unref(opened->cfg);
        free(opened);
        opened = next;
    }
}

static struct tnl_entry_cfg *declared_again(struct tnl_ctx *ctx, struct tnl_entry *e)
{
    for (struct tnl_entry_cfg *d = ctx->decls; d; d = d->next_decl)
        if (same_addr(&e->l.addr, e->l.addrlen, &d->bind, d->bindlen) ||
            same_addr(&e->cfg->bind, e->cfg->bindlen, &d->bind, d->bindlen))
            return d;
    return NULL;
}

/* Phase 2: close entries not declared again, swap the kept ones' cfgs, link
 * the new ones. Cannot fail. */
void tnl_entries_apply(struct tnl_ctx *ctx, struct tnl_entry *opened)
{
    for (struct tnl_entry *e = tnl_entries, *next; e; e = next) {
        next = e->next;
        if (e->dynamic)
            continue;
        struct tnl_entry_cfg *d = declared_again(ctx, e);
        if (!d) {
            tnl_entry_close(e);
            continue;
        }
        struct tnl_entry_cfg *old = e->cfg;
        tnl_entry_cfg_ref(d);
        e->cfg = d;
        e->handle = d->handle;
        tnl_entry_cfg_unref(old);
    }
    while (opened) {
        struct tnl_entry *next = opened->next;
        link_entry(opened);
        log_listen("listen", opened);
        opened = next;
    }
    tnl_entry_decls_free(ctx);
}

void tnl_entry_decls_free(struct tnl_ctx *ctx)
{
    struct tnl_entry_cfg *d = ctx->decls;
    ctx->decls = NULL;
    while (d) {
        struct tnl_entry_cfg *next = d->next_decl;
        d->next_decl = NULL;
        tnl_entry_cfg_unref(d);
        d = next;
    }
}

struct tnl_entry *tnl_entry_by_handle(uint64_t handle)
{
    for (struct tnl_entry *e = tnl_entries; e; e = e->next)
        if (e->handle == handle)
            return e;
    return NULL;
}

struct tnl_entry_cfg *tnl_entry_decl_by_handle(struct tnl_ctx *ctx, uint64_t handle)
{
    for (struct tnl_entry_cfg *d = ctx ? ctx->decls : NULL; d; d = d->next_decl)
        if (d->handle == handle)
            return d;
    return NULL;
}

void tnl_entries_close_all(void)
{
    while (tnl_entries)
        tnl_entry_close(tnl_entries);
}
