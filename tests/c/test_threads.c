/* Concurrent calls: several threads format and generate different inputs at once; each
 * must get its own result and its own log, never another call's records. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mptcpstate.h>

#include "check.h"

#define THREADS 8
#define ROUNDS 25

static pthread_barrier_t start;

struct worker {
    int id;
    int failures;
};

static void *work(void *arg) {
    struct worker *w = arg;
    char input[512], name[32], own_ip[32], own_warning[96], other_ip[32];
    snprintf(name, sizeof name, "eth%d", w->id);
    /* fe80::1:<id> is link-local: flags on it give one warning that names it. */
    snprintf(own_ip, sizeof own_ip, "fe80::1:%d", w->id);
    snprintf(own_warning, sizeof own_warning, "%s: %s is link-local", name, own_ip);
    snprintf(input, sizeof input,
             "interfaces:\n"
             "- name: %s\n"
             "  mptcp:\n"
             "    address-flags: [subflow]\n"
             "  ipv4:\n"
             "    enabled: true\n"
             "    address:\n"
             "    - ip: 192.0.2.%d\n"
             "      prefix-length: 24\n"
             "  ipv6:\n"
             "    enabled: true\n"
             "    address:\n"
             "    - ip: %s\n"
             "      prefix-length: 64\n",
             name, 10 + w->id, own_ip);

    pthread_barrier_wait(&start);
    for (int round = 0; round < ROUNDS; round++) {
        uint32_t flags = (round + w->id) % 2 ? MPTCPSTATE_FLAG_YAML_OUTPUT : 0;
        struct call c = round % 3 == 2 ? gc_call(flags, input) : format_call(flags, input);
        CHECK(c.rc == MPTCPSTATE_RESULT_OK);
        CHECK(c.err_kind == NULL && c.err_msg == NULL);
        CHECK_HAS(c.out, name);
        CHECK_HAS(c.log, own_warning);
        CHECK(count_of(c.log, "\"time\":") == 1); /* this call's one record, no other */
        for (int other = 0; other < THREADS; other++) {
            if (other == w->id)
                continue;
            snprintf(other_ip, sizeof other_ip, "fe80::1:%d\"", other);
            CHECK(c.out == NULL || strstr(c.out, other_ip) == NULL);
            snprintf(other_ip, sizeof other_ip, "fe80::1:%d ", other);
            CHECK(c.log == NULL || strstr(c.log, other_ip) == NULL);
        }
        call_free(&c);

        /* An error in between: its log and message are this call's too. */
        c = format_call(0, "interfaces: 3\n");
        CHECK(c.rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
        CHECK_STR(c.log, "[]");
        call_free(&c);
    }
    w->failures = failures;
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    int failed = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pthread_barrier_init(&start, NULL, THREADS) != 0) {
        perror("pthread_barrier_init");
        return 1;
    }
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.id = i, .failures = 0};
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        failed += workers[i].failures != 0;
    }
    pthread_barrier_destroy(&start);
    printf("test_threads: %d threads x %d rounds, %d threads failed\n", THREADS, ROUNDS,
           failed);
    return failed ? 1 : 0;
}
