/* The arguments of mptcpstate_apply, mptcpstate_checkpoint_commit and
 * mptcpstate_checkpoint_rollback: bad ones are refused before the library touches the
 * system, so these tests need no NetworkManager and no privileges. The calls that do
 * reach NetworkManager are tested in tests/nm. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mptcpstate.h>

#include "check.h"

/* The seed's example (nmstate's MPTCP page): valid input. */
static const char SEED[] = "interfaces:\n"
                           "  - name: eth1\n"
                           "    type: ethernet\n"
                           "    state: up\n"
                           "    mptcp:\n"
                           "      address-flags: [subflow, signal]\n"
                           "    ipv4:\n"
                           "      enabled: true\n"
                           "      dhcp: false\n"
                           "      address:\n"
                           "        - ip: 192.0.2.2\n"
                           "          prefix-length: 24\n";

static const char BAD_UTF8[] = "interfaces:\n- name: eth\xff\n";
static const char UNKNOWN_KEY[] = "interfaces:\n- name: eth1\n  mptcp:\n    adress-flags: []\n";

/* One apply's outputs: `out` is the checkpoint. */
static struct call apply_call(uint32_t flags, const char *state, uint32_t timeout) {
    struct call c;
    c.rc = mptcpstate_apply(flags, state, timeout, &c.out, &c.log, &c.err_kind, &c.err_msg);
    return c;
}

typedef enum mptcpstate_result (*checkpoint_fn)(const char *, char **, char **, char **);

static const struct {
    const char *name;
    checkpoint_fn fn;
} CHECKPOINT_FNS[] = {
    {"commit", mptcpstate_checkpoint_commit},
    {"rollback", mptcpstate_checkpoint_rollback},
};

/* A refused call: `InvalidArgument`, a message with `needle`, a log, no checkpoint. */
static void check_invalid(const struct call *c, const char *needle) {
    CHECK(c->rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(c->out == NULL);
    CHECK_STR(c->err_kind, "InvalidArgument");
    CHECK_HAS(c->err_msg, needle);
    CHECK(c->log != NULL && c->log[0] == '[' && c->log[strlen(c->log) - 1] == ']');
}

static void test_null_state(void) {
    struct call c = apply_call(0, NULL, 60);
    check_invalid(&c, "state");
    CHECK_HAS(c.err_msg, "NULL");
    call_free(&c);
    c = apply_call(MPTCPSTATE_FLAG_NO_COMMIT, NULL, 60);
    check_invalid(&c, "NULL");
    call_free(&c);
}

static void test_non_utf8_state(void) {
    struct call c = apply_call(0, BAD_UTF8, 60);
    check_invalid(&c, "UTF-8");
    CHECK_HAS(c.err_msg, "offset 23");
    call_free(&c);
}

static void test_invalid_state(void) {
    struct call c = apply_call(0, UNKNOWN_KEY, 60);
    check_invalid(&c, "adress-flags");
    CHECK_HAS(c.err_msg, "interfaces[0].mptcp");
    call_free(&c);

    c = apply_call(MPTCPSTATE_FLAG_NO_COMMIT | MPTCPSTATE_FLAG_NO_VERIFY, "", 60);
    check_invalid(&c, "empty");
    call_free(&c);
}

static void test_unknown_flags(void) {
    struct call c = apply_call(1u << 20, SEED, 60);
    check_invalid(&c, "unknown bits 0x100000");
    call_free(&c);
    c = apply_call(MPTCPSTATE_FLAG_NO_COMMIT | 0x80000000u, SEED, 60);
    check_invalid(&c, "unknown bits 0x80000000");
    call_free(&c);
}

/* NetworkManager would never roll back by itself: refused, before any system access. */
static void test_no_commit_without_rollback_timeout(void) {
    struct call c = apply_call(MPTCPSTATE_FLAG_NO_COMMIT, SEED, 0);
    check_invalid(&c, "rollback");
    call_free(&c);
    c = apply_call(MPTCPSTATE_FLAG_NO_COMMIT | MPTCPSTATE_FLAG_MEMORY_ONLY |
                       MPTCPSTATE_FLAG_YAML_OUTPUT,
                   SEED, 0);
    check_invalid(&c, "rollback");
    call_free(&c);
}

static void test_non_utf8_checkpoint(void) {
    static const char bad[] = "/org/freedesktop/NetworkManager/Checkpoint/\xfe";
    for (size_t i = 0; i < sizeof CHECKPOINT_FNS / sizeof CHECKPOINT_FNS[0]; i++) {
        char *log, *kind, *msg;
        enum mptcpstate_result rc = CHECKPOINT_FNS[i].fn(bad, &log, &kind, &msg);
        if (rc != MPTCPSTATE_RESULT_INVALID_ARGUMENT)
            fprintf(stderr, "  %s: %d\n", CHECKPOINT_FNS[i].name, (int)rc);
        CHECK(rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
        CHECK_STR(kind, "InvalidArgument");
        CHECK_HAS(msg, "checkpoint");
        CHECK_HAS(msg, "UTF-8");
        CHECK(log != NULL && log[0] == '[');
        mptcpstate_cstring_free(log);
        mptcpstate_cstring_free(kind);
        mptcpstate_cstring_free(msg);

        /* No out-parameter wanted: only the code. */
        CHECK(CHECKPOINT_FNS[i].fn(bad, NULL, NULL, NULL) == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    }
}

/* Every out-parameter is set to NULL on entry, the checkpoint included. */
static void test_out_params_nulled_on_entry(void) {
    static char sentinel[] = "stale";
    static const struct {
        uint32_t flags;
        const char *state;
        uint32_t timeout;
    } cases[] = {
        {1u << 31, SEED, 60},                     /* unknown flag bits */
        {MPTCPSTATE_FLAG_NO_COMMIT, NULL, 60},    /* NULL state */
        {0, BAD_UTF8, 60},                        /* not UTF-8 */
        {MPTCPSTATE_FLAG_NO_COMMIT, UNKNOWN_KEY, 60}, /* refused by the parser */
        {MPTCPSTATE_FLAG_NO_COMMIT, SEED, 0},     /* no-commit that never rolls back */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *cp = sentinel, *log = sentinel, *kind = sentinel, *msg = sentinel;
        enum mptcpstate_result rc = mptcpstate_apply(cases[i].flags, cases[i].state,
                                                     cases[i].timeout, &cp, &log, &kind, &msg);
        CHECK(rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
        CHECK(cp == NULL);
        CHECK(log != sentinel && log != NULL);
        CHECK(kind != sentinel && kind != NULL);
        CHECK(msg != sentinel && msg != NULL);
        if (log != sentinel)
            mptcpstate_cstring_free(log);
        if (kind != sentinel)
            mptcpstate_cstring_free(kind);
        if (msg != sentinel)
            mptcpstate_cstring_free(msg);

        /* No out-parameter wanted: the checkpoint is optional too. */
        CHECK(mptcpstate_apply(cases[i].flags, cases[i].state, cases[i].timeout, NULL, NULL,
                               NULL, NULL) == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    }

    static const char bad[] = "\xc3(";
    for (size_t i = 0; i < sizeof CHECKPOINT_FNS / sizeof CHECKPOINT_FNS[0]; i++) {
        char *log = sentinel, *kind = sentinel, *msg = sentinel;
        CHECK(CHECKPOINT_FNS[i].fn(bad, &log, &kind, &msg) == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
        CHECK(log != sentinel && kind != sentinel && msg != sentinel);
        if (log != sentinel)
            mptcpstate_cstring_free(log);
        if (kind != sentinel)
            mptcpstate_cstring_free(kind);
        if (msg != sentinel)
            mptcpstate_cstring_free(msg);
    }
}

int main(void) {
    static const struct test tests[] = {
        {"null_state", test_null_state},
        {"non_utf8_state", test_non_utf8_state},
        {"invalid_state", test_invalid_state},
        {"unknown_flags", test_unknown_flags},
        {"no_commit_without_rollback_timeout", test_no_commit_without_rollback_timeout},
        {"non_utf8_checkpoint", test_non_utf8_checkpoint},
        {"out_params_nulled_on_entry", test_out_params_nulled_on_entry},
    };
    return run_tests("test_apply_args", tests, sizeof tests / sizeof tests[0]);
}
