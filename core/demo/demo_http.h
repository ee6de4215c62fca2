/*
 * demo_http.h — a tiny built-in HTTP service for the quickstart and tests.
 *
 * Answers every request with 200 and a short text page naming the request and
 * the client (the real client when a PROXY header comes first, which is how
 * an agent passes it on with send_proxy). Keep-alive as the client asks.
 * Requests are parsed with http-parser (Debian's libhttp-parser).
 */
#ifndef TNL_DEMO_HTTP_H
#define TNL_DEMO_HTTP_H

#include <stddef.h>

struct tnl_demo_http;

/* Listen on addr ("127.0.0.1:0" picks a port). NULL with err on failure. */
struct tnl_demo_http *tnl_demo_http_start(const char *addr, const char *text, char *err, size_t cap);
const char *tnl_demo_http_addr(const struct tnl_demo_http *d);
unsigned long long tnl_demo_http_requests(const struct tnl_demo_http *d);
void tnl_demo_http_stop(struct tnl_demo_http *d);

#endif
