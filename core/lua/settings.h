/*
 * settings.h — process settings a script gives with tunnel.config{}: log
 * level, drain deadline, copy buffer size, zero copy, admission limits, the management
 * endpoint. They belong to a script generation: recorded while it loads,
 * applied when it is committed, over the defaults (a setting the new script
 * no longer gives returns to its default). A host's live ctx applies them at
 * once.
 */
#ifndef TNL_SETTINGS_H
#define TNL_SETTINGS_H

#include <stddef.h>

#include "limit/admission.h"
#include "mgmt/mgmt.h"
#include "util/log.h"

struct tnl_settings {
    int has_log_level;
    enum tnl_log_level log_level;
    int has_drain;
    double drain_timeout;
    int has_buffer;
    size_t buffer_size;
    int zero_copy;              /* 0: not given (on), 1: on, -1: off */
    int has_limits;
    struct tnl_limits limits;
    int mgmt;                   /* 0: not given (default), 1: configured, -1: off */
    struct tnl_mgmt_cfg mgmt_cfg;
};

/* What `tunnel run` sets before any script: the CLI's flags, and whether the
 * management endpoint is on by default (yes under tunnel run, for a script
 * that serves a relay or a listener; no in a host, and no for an agent alone,
 * which listens on nothing unless asked). */
struct tnl_defaults {
    enum tnl_log_level log_level;
    double drain_timeout;
    int mgmt_on;
};
extern struct tnl_defaults tnl_defaults;

struct tnl_ctx;
/* serves: the script has relays or listeners (the management default). */
void tnl_settings_apply(const struct tnl_settings *s, int serves);

#endif
