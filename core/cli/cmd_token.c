/*
 * cmd_token.c — signed identity tokens from the command line.
 *
 *   tunnel token secret --out FILE                      32 random bytes, hex, mode 0600
 *   tunnel token issue --id ID [--role R] --ttl 1h --secret-file FILE
 *   tunnel token verify --secret-file FILE TOKEN         prints id, role, expiry
 *   tunnel token bootstrap ...                           (Lua: lua/tunnel/bootstrap.lua)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "cli/cli.h"
#include "token/token.h"
#include "util/atomic_file.h"
#include "util/duration.h"

static int die(const char *msg)
{
    fprintf(stderr, "tunnel: %s\n", msg);
    return 1;
}

static int token_secret(int argc, char **argv)
{
    static const struct option lo[] = { { "out", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 } };
    const char *out = NULL;
    char err[512], hex[2 * 32 + 2];
    uint8_t key[32];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else return 2;
    }
    if (!out || optind != argc)
        return die("usage: tunnel token secret --out FILE");
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(hex, sizeof hex, key, sizeof key);
    sodium_memzero(key, sizeof key);
    size_t n = strlen(hex);
    hex[n] = '\n';
    int rc = tnl_file_replace(out, hex, n + 1, 0600, err, sizeof err);
    sodium_memzero(hex, sizeof hex);
    if (rc < 0)
        return die(err);
    printf("token secret written to %s (mode 0600)\n", out);
    return 0;
}

static int load_secret(const char *path, uint8_t *secret, size_t cap)
{
    char err[512];
    int n = tnl_token_secret_load(path, secret, cap, err, sizeof err);
    if (n < 0)
        die(err);
    return n;
}

static int token_issue(int argc, char **argv)
{
    static const struct option lo[] = {
        { "id", required_argument, NULL, 'i' }, { "role", required_argument, NULL, 'r' },
        { "ttl", required_argument, NULL, 't' }, { "secret-file", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    const char *id = NULL, *role = "", *ttl_s = NULL, *secret_file = NULL;
    uint8_t secret[TNL_TOKEN_SECRET_MAX];
    char out[TNL_TOKEN_MAX + 1];
    int64_t ttl;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'i': id = optarg; break;
        case 'r': role = optarg; break;
        case 't': ttl_s = optarg; break;
        case 's': secret_file = optarg; break;
        default: return 2;
        }
    }
    if (!id || !ttl_s || !secret_file || optind != argc)
        return die("usage: tunnel token issue --id ID [--role R] --ttl 1h --secret-file FILE");
    if (tnl_duration_parse(ttl_s, &ttl) < 0 || ttl <= 0)
        return die("--ttl takes a duration such as 90s, 30m, 24h or 7d");
    int n = load_secret(secret_file, secret, sizeof secret);
    if (n < 0)
        return 1;
    struct tnl_token t = { .exp = (int64_t)time(NULL) + ttl };
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.role, sizeof t.role, "%s", role);
    int len = tnl_token_issue(&t, secret, (size_t)n, out, sizeof out);
    sodium_memzero(secret, sizeof secret);
    if (len < 0)
        return die("--id and --role must be 1 to 128 printable characters without quotes or backslashes");
    printf("%.*s\n", len, out);
    return 0;
}

static int token_verify(int argc, char **argv)
{
    static const struct option lo[] = { { "secret-file", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
    const char *secret_file = NULL, *why = NULL;
    uint8_t secret[TNL_TOKEN_SECRET_MAX];
    struct tnl_token t;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 's') secret_file = optarg;
        else return 2;
    }
    if (!secret_file || optind != argc - 1)
        return die("usage: tunnel token verify --secret-file FILE TOKEN");
    int n = load_secret(secret_file, secret, sizeof secret);
    if (n < 0)
        return 1;
    const char *tok = argv[optind];
    enum tnl_token_status st = tnl_token_verify(tok, strlen(tok), secret, (size_t)n, time(NULL), &t, &why);
    sodium_memzero(secret, sizeof secret);
    if (st != TNL_TOKEN_OK) {
        fprintf(stderr, "tunnel: token refused: %s\n", why);
        return 1;
    }
    char when[64];
    time_t exp = (time_t)t.exp;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&exp));
    printf("id:      %s\nrole:    %s\nexpires: %s\n", t.id, t.role[0] ? t.role : "(none)", when);
    return 0;
}

int tnl_cli_token(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "secret") == 0)
        return token_secret(argc - 1, argv + 1);
    if (strcmp(sub, "issue") == 0)
        return token_issue(argc - 1, argv + 1);
    if (strcmp(sub, "verify") == 0)
        return token_verify(argc - 1, argv + 1);
    if (strcmp(sub, "bootstrap") == 0 || strcmp(sub, "list") == 0 || strcmp(sub, "revoke") == 0)
        return tnl_cli_lua("tunnel.bootstrap", argc - 1, argv + 1);
    return die("usage: tunnel token secret|issue|verify|bootstrap|list|revoke ...");
}
