/*
 * settings.c — applying tunnel.config{} (see settings.h).
 */
#include "lua/settings.h"

#include <stdio.h>
#include <string.h>

#include "loop/loop.h"
#include "net/pipe.h"
#include "util/buf.h"

struct tnl_defaults tnl_defaults = { TNL_LOG_INFO, 30.0, 0 };

static void default_mgmt(struct tnl_mgmt_cfg *m)
{
    const char *why;
    memset(m, 0, sizeof *m);
    snprintf(m->addr, sizeof m->addr, "127.0.0.1:7777");
    tnl_addr_numeric("127.0.0.1", 7777, &m->bind, &m->bindlen);
    tnl_cidr_parse("127.0.0.0/8", &m->allow[0], &why);
    tnl_cidr_parse("::1/128", &m->allow[1], &why);
    m->nallow = 2;
}

void tnl_settings_apply(const struct tnl_settings *s, int serves)
{
    char err[300];
    tnl_log_level = s->has_log_level ? s->log_level : tnl_defaults.log_level;
    tnl_drain_timeout = s->has_drain ? s->drain_timeout : tnl_defaults.drain_timeout;
    tnl_buf_set_size(s->has_buffer ? s->buffer_size : 128 * 1024);
    tnl_pipe_enable(s->zero_copy >= 0);
    tnl_admission_configure(s->has_limits ? &s->limits : &tnl_limits_default);
    if (s->mgmt == 1 || (s->mgmt == 0 && tnl_defaults.mgmt_on && serves)) {
        struct tnl_mgmt_cfg m;
        if (s->mgmt == 1)
            m = s->mgmt_cfg;
        else
            default_mgmt(&m);
        if (tnl_mgmt_configure(&m, err, sizeof err) < 0)
            tnl_logf(s->mgmt == 1 ? TNL_LOG_ERROR : TNL_LOG_WARN, "mgmt_error", "%s", err);
        memset(m.token, 0, sizeof m.token);
    } else {
        tnl_mgmt_configure(NULL, err, sizeof err);
    }
}
