/*
 * insn_count.c - a QEMU TCG plugin (plugin API version 1, QEMU 7.2) for `make pi-cost`.
 *
 * Counts the guest instructions each emulated CPU (in qemu-user: each guest thread) executes,
 * and prints the counts whenever the guest asks for a mark. A mark is a syscall the guest
 * makes on purpose and the kernel refuses at once: lseek(-1, ID, 0x5641) ("VA"). The plugin
 * sees it before the kernel does and writes, through qemu's log (`-d plugin -D FILE`):
 *
 *     mark ID VCPU THREAD_COUNT ALL_COUNT
 *
 * VCPU numbers the calling thread; THREAD_COUNT is what it has executed so far, ALL_COUNT what every thread
 * has. At exit it writes "exit ALL_COUNT". The guest turns marks into per-stage counts.
 *
 * The API's few declarations are written out below because Debian's qemu-user ships no
 * qemu-plugin.h; they match include/qemu/qemu-plugin.h of QEMU 7.2 (QEMU_PLUGIN_VERSION 1).
 *
 * Build: gcc -shared -fPIC -O2 -o libinsn_count.so insn_count.c
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, void (*cb)(unsigned int, void *),
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id,
                                          void (*cb)(qemu_plugin_id_t, unsigned int, int64_t, uint64_t,
                                                     uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
                                                     uint64_t, uint64_t));
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *), void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MAX_THREADS 1024
#define SYS_LSEEK 62 /* aarch64 */
#define MARK_WHENCE 0x5641

/* One slot per vCPU (guest thread): each is written only by its own thread, so no atomics. */
static uint64_t counts[MAX_THREADS];

static uint64_t all_counts(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < MAX_THREADS; i++) {
        sum += counts[i];
    }
    return sum;
}

static void tb_exec(unsigned int vcpu, void *n_insns)
{
    counts[vcpu % MAX_THREADS] += (uint64_t)(uintptr_t)n_insns;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num != SYS_LSEEK || (int32_t)a1 != -1 || (uint32_t)a3 != MARK_WHENCE) {
        return;
    }
    char line[128];
    snprintf(line, sizeof line, "mark %" PRIu64 " %u %" PRIu64 " %" PRIu64 "\n", a2, vcpu,
             counts[vcpu % MAX_THREADS], all_counts());
    qemu_plugin_outs(line);
}

static void on_exit(qemu_plugin_id_t id, void *p)
{
    (void)id, (void)p;
    char line[64];
    snprintf(line, sizeof line, "exit %" PRIu64 "\n", all_counts());
    qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info, (void)argc, (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
