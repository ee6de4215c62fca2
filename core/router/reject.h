/*
 * reject.h — refusing a connection in the client's own protocol.
 *
 *   proto        NO_ROUTE                          UPSTREAM (unreachable, hook failed)
 *   tls          alert unrecognized_name (112)     alert internal_error (80)
 *   http         404 Not Found, short text body    502 Bad Gateway, short text body
 *   http2        SETTINGS + GOAWAY (REFUSED_STREAM / INTERNAL_ERROR)
 *   postgresql   ErrorResponse FATAL 08004         ErrorResponse FATAL 08006
 *   others       nothing: the connection is closed
 *
 * The operator's reason goes to the log, never to the client.
 */
#ifndef TNL_REJECT_H
#define TNL_REJECT_H

#include <stddef.h>
#include <stdint.h>

#include "router/conn.h"

/* Bytes to send (0: just close). */
size_t tnl_reject_answer(const char *proto, const struct tnl_sniff_result *sr, enum tnl_reject kind,
                         uint8_t *out, size_t cap);

#endif
