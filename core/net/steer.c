/*
 * steer.c — the least loaded worker gets each new connection (see steer.h).
 */
#include "net/steer.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

/* Distinct listening addresses over a run of the workers (a reload keeps
 * the slot of an address it keeps; new ones take new slots). Beyond that,
 * a listener is spread by hash. */
enum { STEER_GROUPS = 32, STEER_WORKERS = 64 };

/* A load no worker reaches: the one that does not serve. */
#define STEER_IDLE (1u << 30)

/* What the program reads, one value of a one-entry array map, mapped into
 * every worker: load at the worker's last loop turn, and what the program
 * gave it since. */
struct loads {
    uint32_t open[STEER_WORKERS];
    uint32_t since[STEER_WORKERS];
};

/* Which slot a listening address has: the same in every worker, so that one
 * program serves the group (shared page, taken under the lock). */
struct groups {
    atomic_flag lock;
    struct {
        socklen_t len;                  /* 0: free */
        struct sockaddr_storage addr;
    } g[STEER_GROUPS];
};

static int nworkers;
static int loads_fd = -1, socks_fd = -1;
static volatile struct loads *loads;
static struct groups *groups;
static int progs[STEER_GROUPS];         /* this worker's program per slot, -1: not loaded */
static int warned;

static int sys_bpf(int cmd, union bpf_attr *a)
{
    return (int)syscall(__NR_bpf, cmd, a, sizeof *a);
}

static int map_create(uint32_t type, uint32_t value_size, uint32_t entries, uint32_t flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type;
    a.key_size = sizeof(uint32_t);
    a.value_size = value_size;
    a.max_entries = entries;
    a.map_flags = flags;
    return sys_bpf(BPF_MAP_CREATE, &a);
}

static int fail(char *why, size_t cap, const char *step)
{
    snprintf(why, cap, "%s: %s", step, strerror(errno));
    if (loads)
        munmap((void *)loads, sizeof *loads);
    if (groups)
        munmap(groups, sizeof *groups);
    if (loads_fd >= 0)
        close(loads_fd);
    if (socks_fd >= 0)
        close(socks_fd);
    loads = NULL;
    groups = NULL;
    loads_fd = socks_fd = -1;
    return 0;
}

int tnl_steer_setup(int n, char *why, size_t cap)
{
    const char *env = getenv("TUNNEL_STEER");
    if (env && strcmp(env, "off") == 0) {
        snprintf(why, cap, "TUNNEL_STEER=off");
        return 0;
    }
    if (n < 2 || n > STEER_WORKERS) {
        snprintf(why, cap, "%d workers", n);
        return 0;
    }
    loads_fd = map_create(BPF_MAP_TYPE_ARRAY, sizeof(struct loads), 1, BPF_F_MMAPABLE);
    if (loads_fd < 0)
        return fail(why, cap, "BPF array map");
    void *p = mmap(NULL, sizeof(struct loads), PROT_READ | PROT_WRITE, MAP_SHARED, loads_fd, 0);
    if (p == MAP_FAILED)
        return fail(why, cap, "mmap of the BPF array");
    loads = p;
    socks_fd = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, sizeof(uint64_t), STEER_GROUPS * STEER_WORKERS, 0);
    if (socks_fd < 0)
        return fail(why, cap, "BPF reuseport socket array");
    p = mmap(NULL, sizeof(struct groups), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return fail(why, cap, "shared page");
    groups = p;
    atomic_flag_clear(&groups->lock);
    /* Until they say otherwise, the workers after the first serve nothing. */
    for (int w = 1; w < n; w++)
        loads->open[w] = STEER_IDLE;
    for (int g = 0; g < STEER_GROUPS; g++)
        progs[g] = -1;
    nworkers = n;
    return 1;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

/* The program of slot g: least loaded of the workers' keys g*64 .. g*64+n-1. */
static int load_prog(int g)
{
    struct bpf_insn p[32 + 6 * STEER_WORKERS];
    int k = 0;
    const short since = (short)offsetof(struct loads, since);
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0);          /* r6 = ctx */
    p[k++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_7, BPF_PSEUDO_MAP_VALUE, 0, loads_fd);
    p[k++] = INSN(0, 0, 0, 0, 0);                                                    /* r7 = &loads */
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_8, 0, 0, 0);                  /* best = 0 */
    p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_9, BPF_REG_7, 0, 0);            /* least = open[0] */
    p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_0, BPF_REG_7, since, 0);
    p[k++] = INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_9, BPF_REG_0, 0, 0);          /* + since[0] */
    for (int w = 1; w < nworkers; w++) {
        p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_1, BPF_REG_7, (short)(4 * w), 0);
        p[k++] = INSN(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_0, BPF_REG_7, (short)(since + 4 * w), 0);
        p[k++] = INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_1, BPF_REG_0, 0, 0);
        p[k++] = INSN(BPF_JMP | BPF_JGE | BPF_X, BPF_REG_1, BPF_REG_9, 2, 0);        /* not less: next */
        p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_9, BPF_REG_1, 0, 0);
        p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_8, 0, 0, w);
    }
    /* since[best] += 1 (atomic: both CPUs may take connections at once) */
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_8, 0, 0);
    p[k++] = INSN(BPF_ALU64 | BPF_LSH | BPF_K, BPF_REG_1, 0, 0, 2);
    p[k++] = INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_1, BPF_REG_7, 0, 0);
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 1);
    p[k++] = INSN(BPF_STX | BPF_ATOMIC | BPF_W, BPF_REG_1, BPF_REG_2, since, BPF_ADD);
    /* bpf_sk_select_reuseport(ctx, socks, &key, 0), key = g*64 + best */
    p[k++] = INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_8, 0, 0, g * STEER_WORKERS);
    p[k++] = INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_8, -4, 0);
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0);
    p[k++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, socks_fd);
    p[k++] = INSN(0, 0, 0, 0, 0);
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0);
    p[k++] = INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -4);
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0);
    p[k++] = INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_select_reuseport);
    /* Pass whether or not it selected: an empty slot falls back to the hash. */
    p[k++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, SK_PASS);
    p[k++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
    a.expected_attach_type = BPF_SK_REUSEPORT_SELECT;
    a.insns = (uintptr_t)p;
    a.insn_cnt = (uint32_t)k;
    a.license = (uintptr_t)"Dual MIT/GPL";
    return sys_bpf(BPF_PROG_LOAD, &a);
}

/* The slot of this address, taken if new; -1 when all are taken. */
static int group_of(const struct sockaddr_storage *bind, socklen_t len)
{
    int found = -1;
    while (atomic_flag_test_and_set_explicit(&groups->lock, memory_order_acquire))
        ;
    for (int g = 0; g < STEER_GROUPS && found < 0; g++)
        if (groups->g[g].len == len && memcmp(&groups->g[g].addr, bind, len) == 0)
            found = g;
    for (int g = 0; g < STEER_GROUPS && found < 0; g++)
        if (groups->g[g].len == 0) {
            memcpy(&groups->g[g].addr, bind, len);
            groups->g[g].len = len;
            found = g;
        }
    atomic_flag_clear_explicit(&groups->lock, memory_order_release);
    return found;
}

/* Log the first failure of a worker (the others are alike); -1. */
static int warn_once(const char *step)
{
    if (!warned++)
        tnl_logf(TNL_LOG_WARN, "steer_error", "cannot steer new connections by load (%s: %s); this "
                 "listener's connections are spread by hash and handed over", step, strerror(errno));
    return -1;
}

int tnl_steer_listen(int me, int fd, const struct sockaddr_storage *bind, socklen_t bindlen)
{
    if (!groups || me < 1 || me > nworkers || bindlen == 0 || bindlen > sizeof *bind)
        return -1;
    int g = group_of(bind, bindlen);
    if (g < 0) {
        errno = ENOSPC;
        return warn_once("all address slots taken");
    }
    if (progs[g] < 0) {
        int prog = load_prog(g);
        if (prog < 0)
            return warn_once("BPF program");
        progs[g] = prog;
    }
    uint32_t key = (uint32_t)(g * STEER_WORKERS + me - 1);
    uint64_t value = (uint64_t)fd;
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = (uint32_t)socks_fd;
    a.key = (uintptr_t)&key;
    a.value = (uintptr_t)&value;
    a.flags = BPF_ANY;
    if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) < 0)
        return warn_once("reuseport socket array");
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &progs[g], sizeof progs[g]) < 0)
        return warn_once("SO_ATTACH_REUSEPORT_EBPF");
    return 0;
}

void tnl_steer_publish(int me, unsigned open, int serving)
{
    if (!loads || me < 1 || me > nworkers)
        return;
    loads->open[me - 1] = serving ? open : STEER_IDLE;
    loads->since[me - 1] = 0;
}
