/*
 * cmd_pki.c — credentials from the command line.
 *
 *   tunnel ca init DIR [--rsa] [--name NAME] [--ttl 3650d]
 *   tunnel keygen --out FILE [--rsa]
 *   tunnel cert issue --ca DIR --name NAME [--role ROLE] [--server] [--dns NAME]...
 *                     [--ttl 24h] [--key FILE] --out DIR
 *   tunnel cert show FILE
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "pki/files.h"
#include "pki/pki.h"
#include "tls/tls.h"
#include "util/atomic_file.h"
#include "util/duration.h"

enum { MAX_DNS = 16 };

static int die(const char *msg)
{
    fprintf(stderr, "tunnel: %s\n", msg);
    return 1;
}

static int parse_ttl(const char *s, int64_t *out)
{
    if (tnl_duration_parse(s, out) < 0) {
        fprintf(stderr, "tunnel: --ttl takes a duration such as 90s, 30m, 24h or 7d, got '%s'\n", s);
        return -1;
    }
    return 0;
}

static int ca_init(int argc, char **argv)
{
    static const struct option lo[] = {
        { "rsa", no_argument, NULL, 'r' }, { "name", required_argument, NULL, 'n' },
        { "ttl", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 },
    };
    const char *name = "tunnel CA";
    int64_t ttl = 3650LL * 86400;
    enum tnl_key_type type = TNL_KEY_P256;
    int c;
    char err[512];
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'r') type = TNL_KEY_RSA2048;
        else if (c == 'n') name = optarg;
        else if (c == 't') { if (parse_ttl(optarg, &ttl) < 0) return 2; }
        else return 2;
    }
    if (optind != argc - 1)
        return die("usage: tunnel ca init DIR [--rsa] [--name NAME] [--ttl 3650d]");
    if (tnl_pki_ca_init_dir(argv[optind], type, name, ttl, err, sizeof err) < 0)
        return die(err);
    printf("CA created in %s: ca.crt (share it), ca.key (mode 0600, keep it secret)\n", argv[optind]);
    return 0;
}

static int keygen(int argc, char **argv)
{
    static const struct option lo[] = {
        { "rsa", no_argument, NULL, 'r' }, { "out", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 },
    };
    enum tnl_key_type type = TNL_KEY_P256;
    const char *out = NULL;
    char err[512];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'r') type = TNL_KEY_RSA2048;
        else if (c == 'o') out = optarg;
        else return 2;
    }
    if (!out || optind != argc)
        return die("usage: tunnel keygen --out FILE [--rsa]");
    EVP_PKEY *key = tnl_pki_keygen(type, err, sizeof err);
    int rc = key ? tnl_pki_key_save(key, out, err, sizeof err) : -1;
    EVP_PKEY_free(key);
    if (rc < 0)
        return die(err);
    printf("%s key written to %s (mode 0600)\n", type == TNL_KEY_RSA2048 ? "RSA-2048" : "P-256", out);
    return 0;
}

struct issue_opts {
    const char *ca, *name, *role, *key, *out;
    const char *dns[MAX_DNS + 1];
    int ndns, server;
    int64_t ttl;
};

static int issue_parse(int argc, char **argv, struct issue_opts *o)
{
    static const struct option lo[] = {
        { "ca", required_argument, NULL, 'c' }, { "name", required_argument, NULL, 'n' },
        { "role", required_argument, NULL, 'r' }, { "server", no_argument, NULL, 's' },
        { "dns", required_argument, NULL, 'd' }, { "ttl", required_argument, NULL, 't' },
        { "key", required_argument, NULL, 'k' }, { "out", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    memset(o, 0, sizeof *o);
    o->ttl = 86400;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->ca = optarg; break;
        case 'n': o->name = optarg; break;
        case 'r': o->role = optarg; break;
        case 's': o->server = 1; break;
        case 'k': o->key = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': if (parse_ttl(optarg, &o->ttl) < 0) return -1; break;
        case 'd':
            if (o->ndns >= MAX_DNS)
                return die("too many --dns"), -1;
            o->dns[o->ndns++] = optarg;
            break;
        default: return -1;
        }
    }
    if (!o->ca || !o->name || !o->out || optind != argc) {
        die("usage: tunnel cert issue --ca DIR --name NAME [--role ROLE] [--server] [--dns NAME]... "
            "[--ttl 24h] [--key FILE] --out DIR");
        return -1;
    }
    return 0;
}

static int cert_issue(int argc, char **argv)
{
    struct issue_opts o;
    char err[512];
    if (issue_parse(argc, argv, &o) < 0)
        return 2;
    struct tnl_issue_files f = {
        .ca_dir = o.ca, .name = o.name, .role = o.role, .server = o.server, .dns = o.ndns ? o.dns : NULL,
        .ttl = o.ttl, .key = o.key, .out = o.out,
    };
    if (tnl_pki_issue_files(&f, err, sizeof err) < 0)
        return die(err);
    printf("issued %s/%s.crt (%s%s%s)\n", o.out, o.name, o.server ? "server" : "client",
           o.role ? ", role " : "", o.role ? o.role : "");
    return 0;
}

static int cert_show(int argc, char **argv)
{
    struct tnl_identity id;
    char err[512], when[64];
    if (argc != 2)
        return die("usage: tunnel cert show FILE");
    if (tnl_tls_file_identity(argv[1], &id, err, sizeof err) < 0)
        return die(err);
    time_t t = (time_t)id.expires;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    printf("name:        %s\nrole:        %s\nfingerprint: %s\nexpires:     %s\n", id.name,
           id.role[0] ? id.role : "(none)", id.fingerprint, when);
    return 0;
}

int tnl_cli_pki(const char *cmd, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "ca") == 0 && strcmp(sub, "init") == 0)
        return ca_init(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return keygen(argc, argv);
    if (strcmp(cmd, "cert") == 0 && strcmp(sub, "issue") == 0)
        return cert_issue(argc - 1, argv + 1);
    if (strcmp(cmd, "cert") == 0 && strcmp(sub, "show") == 0)
        return cert_show(argc - 1, argv + 1);
    return -1;
}
