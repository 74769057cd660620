/* The C ABI of libmptcpstate, through the installed header and library. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mptcpstate.h>

#include "check.h"

#ifndef EXPECTED_VERSION
#error "build with -DEXPECTED_VERSION=\"$(pkg-config --modversion mptcpstate)\""
#endif

/* The codes are the contract (SPEC section 4). */
_Static_assert(MPTCPSTATE_RESULT_OK == 0, "code");
_Static_assert(MPTCPSTATE_RESULT_INVALID_ARGUMENT == 1, "code");
_Static_assert(MPTCPSTATE_RESULT_NOT_SUPPORTED == 2, "code");
_Static_assert(MPTCPSTATE_RESULT_PERMISSION_DENIED == 3, "code");
_Static_assert(MPTCPSTATE_RESULT_NETWORK_MANAGER == 4, "code");
_Static_assert(MPTCPSTATE_RESULT_KERNEL == 5, "code");
_Static_assert(MPTCPSTATE_RESULT_VERIFICATION == 6, "code");
_Static_assert(MPTCPSTATE_RESULT_TIMEOUT == 7, "code");
_Static_assert(MPTCPSTATE_RESULT_BUSY == 8, "code");
_Static_assert(MPTCPSTATE_RESULT_BUG == 9, "code");
_Static_assert(sizeof(enum mptcpstate_result) == sizeof(int), "an int-sized enum");

/* The seed's example (nmstate's MPTCP page). */
static const char SEED[] = "---\n"
                           "interfaces:\n"
                           "  - name: eth1\n"
                           "    type: ethernet\n"
                           "    state: up\n"
                           "    mptcp:\n"
                           "      address-flags:\n"
                           "        - subflow\n"
                           "        - signal\n"
                           "    ipv4:\n"
                           "      enabled: true\n"
                           "      dhcp: false\n"
                           "      address:\n"
                           "        - ip: 192.0.2.2\n"
                           "          prefix-length: 24\n";

/* Flags on a link-local address: ignored with a warning. */
static const char LINK_LOCAL[] = "interfaces:\n"
                                 "- name: eth2\n"
                                 "  mptcp:\n"
                                 "    address-flags: [subflow]\n"
                                 "  ipv6:\n"
                                 "    enabled: true\n"
                                 "    address:\n"
                                 "    - ip: fe80::1\n"
                                 "      prefix-length: 64\n";

static const char UNKNOWN_KEY[] = "interfaces:\n- name: eth1\n  mptcp:\n    adress-flags: []\n";

/* A successful call: main output set, no error, a log that is a JSON array. */
static void check_ok(const struct call *c) {
    CHECK(c->rc == MPTCPSTATE_RESULT_OK);
    CHECK(c->out != NULL);
    CHECK(c->err_kind == NULL);
    CHECK(c->err_msg == NULL);
    if (c->rc != MPTCPSTATE_RESULT_OK)
        fprintf(stderr, "  unexpected error: %s: %s\n", c->err_kind ? c->err_kind : "(NULL)",
                c->err_msg ? c->err_msg : "(NULL)");
    CHECK(c->log != NULL && c->log[0] == '[' && c->log[strlen(c->log) - 1] == ']');
}

/* A failed call with `rc`, its kind's name, a message, a log, and no main output. */
static void check_err(const struct call *c, enum mptcpstate_result rc, const char *kind) {
    CHECK(c->rc == rc);
    CHECK(c->out == NULL);
    CHECK_STR(c->err_kind, kind);
    CHECK(c->err_msg != NULL && c->err_msg[0] != '\0');
    CHECK(c->log != NULL && c->log[0] == '[');
}

static void test_version(void) {
    const char *v = mptcpstate_version();
    CHECK_STR(v, EXPECTED_VERSION);
    CHECK(mptcpstate_version() == v); /* static: the same string every time */
}

static void test_format_seed(void) {
    struct call json = format_call(0, SEED);
    check_ok(&json);
    CHECK(json.out != NULL && json.out[0] == '{');
    CHECK_HAS(json.out, "\"name\": \"eth1\"");
    CHECK_HAS(json.out, "\"address-flags\": [");
    CHECK_HAS(json.out, "\"subflow\"");
    CHECK_HAS(json.out, "\"signal\"");
    CHECK_HAS(json.out, "\"ip\": \"192.0.2.2\"");
    CHECK_STR(json.log, "[]");

    struct call yaml = format_call(MPTCPSTATE_FLAG_YAML_OUTPUT, SEED);
    check_ok(&yaml);
    CHECK(yaml.out != NULL && strncmp(yaml.out, "---\n", 4) == 0);
    CHECK_HAS(yaml.out, "name: eth1");
    CHECK_HAS(yaml.out, "address-flags:");
    CHECK_HAS(yaml.out, "- subflow");
    CHECK_HAS(yaml.out, "ip: 192.0.2.2");

    /* Canonical: formatting the output again changes nothing, whatever the input form. */
    if (json.out != NULL && yaml.out != NULL) {
        struct call again = format_call(0, json.out);
        check_ok(&again);
        CHECK_STR(again.out, json.out);
        call_free(&again);
        again = format_call(MPTCPSTATE_FLAG_YAML_OUTPUT, json.out);
        check_ok(&again);
        CHECK_STR(again.out, yaml.out);
        call_free(&again);
        again = format_call(0, yaml.out);
        check_ok(&again);
        CHECK_STR(again.out, json.out);
        call_free(&again);
    }
    call_free(&json);
    call_free(&yaml);
}

static void test_generate_configurations_seed(void) {
    struct call json = gc_call(0, SEED);
    check_ok(&json);
    CHECK_HAS(json.out, "\"NetworkManager\"");
    CHECK_HAS(json.out, "\"eth1.nmconnection\"");
    CHECK_HAS(json.out, "mptcp-flags=56");
    CHECK_HAS(json.out, "address1=192.0.2.2/24");

    /* Deterministic: the same input gives the same bytes. */
    struct call again = gc_call(0, SEED);
    check_ok(&again);
    CHECK_STR(again.out, json.out);
    call_free(&again);

    struct call yaml = gc_call(MPTCPSTATE_FLAG_YAML_OUTPUT, SEED);
    check_ok(&yaml);
    CHECK(yaml.out != NULL && strncmp(yaml.out, "---\n", 4) == 0);
    CHECK_HAS(yaml.out, "NetworkManager:");
    CHECK_HAS(yaml.out, "eth1.nmconnection");
    CHECK_HAS(yaml.out, "mptcp-flags=56");
    CHECK_HAS(yaml.out, "address1=192.0.2.2/24");
    call_free(&json);
    call_free(&yaml);
}

static void test_null_input(void) {
    call_fn fns[] = {mptcpstate_format, mptcpstate_generate_configurations};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct call c = call_with(fns[i], 0, NULL);
        check_err(&c, MPTCPSTATE_RESULT_INVALID_ARGUMENT, "InvalidArgument");
        CHECK_HAS(c.err_msg, "state");
        CHECK_HAS(c.err_msg, "NULL");
        call_free(&c);
    }
}

static void test_null_main_output(void) {
    char *log, *kind, *msg;
    enum mptcpstate_result rc = mptcpstate_format(0, SEED, NULL, &log, &kind, &msg);
    CHECK(rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK_STR(kind, "InvalidArgument");
    CHECK_HAS(msg, "formatted");
    CHECK(log != NULL);
    mptcpstate_cstring_free(log);
    mptcpstate_cstring_free(kind);
    mptcpstate_cstring_free(msg);

    rc = mptcpstate_generate_configurations(0, SEED, NULL, &log, &kind, &msg);
    CHECK(rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK_STR(kind, "InvalidArgument");
    CHECK_HAS(msg, "configs");
    mptcpstate_cstring_free(log);
    mptcpstate_cstring_free(kind);
    mptcpstate_cstring_free(msg);

    /* Nothing wanted at all: only the code. */
    CHECK(mptcpstate_format(0, SEED, NULL, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(mptcpstate_generate_configurations(0, SEED, NULL, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_INVALID_ARGUMENT);
}

static void test_optional_out_params_null(void) {
    char *out = NULL;
    CHECK(mptcpstate_format(0, SEED, &out, NULL, NULL, NULL) == MPTCPSTATE_RESULT_OK);
    CHECK_HAS(out, "eth1");
    mptcpstate_cstring_free(out);

    CHECK(mptcpstate_generate_configurations(0, SEED, &out, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_OK);
    CHECK_HAS(out, "mptcp-flags=56");
    mptcpstate_cstring_free(out);

    /* Errors too, and a warning in a log nobody wants. */
    CHECK(mptcpstate_format(0, UNKNOWN_KEY, &out, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK(mptcpstate_format(0, NULL, &out, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK(mptcpstate_generate_configurations(0, LINK_LOCAL, &out, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_OK);
    mptcpstate_cstring_free(out);
    CHECK(mptcpstate_generate_configurations(0x80000000u, SEED, &out, NULL, NULL, NULL) ==
          MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(out == NULL);
}

static void test_non_utf8_input(void) {
    static const char bad[] = "interfaces:\n- name: eth\xff\n";
    call_fn fns[] = {mptcpstate_format, mptcpstate_generate_configurations};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct call c = call_with(fns[i], 0, bad);
        check_err(&c, MPTCPSTATE_RESULT_INVALID_ARGUMENT, "InvalidArgument");
        CHECK_HAS(c.err_msg, "UTF-8");
        CHECK_HAS(c.err_msg, "offset 23");
        call_free(&c);
    }
}

static void test_flags(void) {
    call_fn fns[] = {mptcpstate_format, mptcpstate_generate_configurations};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct call c = call_with(fns[i], 1u << 20, SEED);
        check_err(&c, MPTCPSTATE_RESULT_INVALID_ARGUMENT, "InvalidArgument");
        CHECK_HAS(c.err_msg, "unknown bits 0x100000");
        call_free(&c);

        /* The flags of later functions mean nothing here and are ignored. */
        c = call_with(fns[i],
                      MPTCPSTATE_FLAG_KERNEL_ONLY | MPTCPSTATE_FLAG_NO_VERIFY |
                          MPTCPSTATE_FLAG_NO_COMMIT | MPTCPSTATE_FLAG_MEMORY_ONLY,
                      SEED);
        check_ok(&c);
        CHECK(c.out != NULL && c.out[0] == '{');
        call_free(&c);
    }
    /* Distinct bits. */
    CHECK((MPTCPSTATE_FLAG_KERNEL_ONLY | MPTCPSTATE_FLAG_NO_VERIFY | MPTCPSTATE_FLAG_NO_COMMIT |
           MPTCPSTATE_FLAG_MEMORY_ONLY | MPTCPSTATE_FLAG_YAML_OUTPUT) == 0x1f);
}

/* Every out-parameter is set to NULL on entry: a caller that reuses its variables never
 * sees a stale pointer, on error as on success. */
static void test_out_params_nulled_on_entry(void) {
    static char sentinel[] = "stale";
    struct {
        uint32_t flags;
        const char *input;
        int null_main;
    } cases[] = {
        {1u << 31, SEED, 0},    /* refused by the flags check, the first one */
        {0, NULL, 0},           /* NULL input */
        {0, UNKNOWN_KEY, 0},    /* refused by the parser */
        {0, SEED, 1},           /* NULL main output */
        {0, SEED, 0},           /* success */
    };
    call_fn fns[] = {mptcpstate_format, mptcpstate_generate_configurations};
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *out = sentinel, *log = sentinel, *kind = sentinel, *msg = sentinel;
            enum mptcpstate_result rc = fns[f](cases[i].flags, cases[i].input,
                                               cases[i].null_main ? NULL : &out, &log, &kind,
                                               &msg);
            CHECK(log != sentinel && kind != sentinel && msg != sentinel);
            if (cases[i].null_main) {
                CHECK(out == sentinel); /* not given, so not touched */
            } else {
                CHECK(out != sentinel);
            }
            if (rc == MPTCPSTATE_RESULT_OK) {
                CHECK(out != NULL && kind == NULL && msg == NULL);
            } else {
                CHECK((out == NULL || cases[i].null_main) && kind != NULL && msg != NULL);
            }
            CHECK(log != NULL);
            if (out != sentinel)
                mptcpstate_cstring_free(out);
            if (log != sentinel)
                mptcpstate_cstring_free(log);
            if (kind != sentinel)
                mptcpstate_cstring_free(kind);
            if (msg != sentinel)
                mptcpstate_cstring_free(msg);
        }
    }
}

static void test_log_warning(void) {
    call_fn fns[] = {mptcpstate_format, mptcpstate_generate_configurations};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct call c = call_with(fns[i], 0, LINK_LOCAL);
        check_ok(&c);
        CHECK(c.log != NULL && strncmp(c.log, "[{\"time\":\"", 10) == 0);
        CHECK_HAS(c.log, "\"level\":\"warn\"");
        CHECK_HAS(c.log, "\"target\":\"mptcpstate::");
        CHECK_HAS(c.log, "\"message\":\"");
        CHECK_HAS(c.log, "fe80::1");
        CHECK(c.log != NULL && c.log[strlen(c.log) - 1] == ']');
        call_free(&c);
    }
    /* A later call does not see the earlier call's records. */
    struct call c = format_call(0, SEED);
    CHECK_STR(c.log, "[]");
    call_free(&c);
}

static void test_validation_errors(void) {
    struct call c = format_call(0, UNKNOWN_KEY);
    check_err(&c, MPTCPSTATE_RESULT_INVALID_ARGUMENT, "InvalidArgument");
    CHECK_HAS(c.err_msg, "interfaces[0].mptcp");
    CHECK_HAS(c.err_msg, "adress-flags");
    call_free(&c);

    c = gc_call(0, "{\"interfaces\": [{\"name\": \"eth1\", \"mptcp\": "
                   "{\"address-flags\": [\"signal\", \"fullmesh\"]}}]}");
    check_err(&c, MPTCPSTATE_RESULT_INVALID_ARGUMENT, "InvalidArgument");
    CHECK_HAS(c.err_msg, "fullmesh");
    call_free(&c);

    c = format_call(0, "");
    check_err(&c, MPTCPSTATE_RESULT_INVALID_ARGUMENT, "InvalidArgument");
    CHECK_HAS(c.err_msg, "empty");
    call_free(&c);
}

static void test_free_null(void) {
    mptcpstate_cstring_free(NULL);
}

int main(void) {
    static const struct test tests[] = {
        {"version", test_version},
        {"format_seed", test_format_seed},
        {"generate_configurations_seed", test_generate_configurations_seed},
        {"null_input", test_null_input},
        {"null_main_output", test_null_main_output},
        {"optional_out_params_null", test_optional_out_params_null},
        {"non_utf8_input", test_non_utf8_input},
        {"flags", test_flags},
        {"out_params_nulled_on_entry", test_out_params_nulled_on_entry},
        {"log_warning", test_log_warning},
        {"validation_errors", test_validation_errors},
        {"free_null", test_free_null},
    };
    return run_tests("test_api", tests, sizeof tests / sizeof tests[0]);
}
