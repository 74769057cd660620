/* mptcpstate_show through the C ABI, run inside a sandbox network namespace with a real
 * NetworkManager (tests/c/in_sandbox.py), under valgrind. */
#include <stdlib.h>

#include "check.h"

static struct call show_call(uint32_t flags) {
    struct call c;
    c.rc = mptcpstate_show(flags, &c.out, &c.log, &c.err_kind, &c.err_msg);
    return c;
}

static void test_kernel_only_yaml(void) {
    struct call c = show_call(MPTCPSTATE_FLAG_KERNEL_ONLY | MPTCPSTATE_FLAG_YAML_OUTPUT);
    CHECK(c.rc == MPTCPSTATE_RESULT_OK);
    CHECK(c.out != NULL && strncmp(c.out, "---\n", 4) == 0);
    CHECK_HAS(c.out, "- name: eth1\n");
    CHECK_HAS(c.out, "- name: lo\n");
    CHECK_HAS(c.out, "ip: 192.0.2.2\n");
    CHECK_HAS(c.out, "add-addr-accepted:");
    CHECK(c.err_kind == NULL && c.err_msg == NULL);
    CHECK(c.log != NULL && c.log[0] == '[');
    call_free(&c);
}

static void test_full_json(void) {
    struct call c = show_call(0);
    CHECK(c.rc == MPTCPSTATE_RESULT_OK);
    CHECK(c.out != NULL && c.out[0] == '{');
    CHECK_HAS(c.out, "\"name\": \"eth1\"");
    CHECK_HAS(c.out, "\"subflow\"");
    call_free(&c);
}

static void test_show_output_is_valid_input(void) {
    struct call s = show_call(0);
    CHECK(s.rc == MPTCPSTATE_RESULT_OK);
    struct call f = format_call(0, s.out);
    CHECK(f.rc == MPTCPSTATE_RESULT_OK);
    CHECK(f.out != NULL && s.out != NULL && strcmp(f.out, s.out) == 0);
    call_free(&s);
    call_free(&f);
}

static void test_bad_arguments(void) {
    char *log = (char *)1;
    CHECK(mptcpstate_show(0, NULL, &log, NULL, NULL) == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(log != NULL && log != (char *)1);
    mptcpstate_cstring_free(log);
    struct call c = show_call(0x40000000u);
    CHECK(c.rc == MPTCPSTATE_RESULT_INVALID_ARGUMENT);
    CHECK(c.out == NULL);
    CHECK_STR(c.err_kind, "InvalidArgument");
    call_free(&c);
}

/* Last: it points the process at a bus that does not exist. */
static void test_no_networkmanager(void) {
    setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/system_bus_socket", 1);
    struct call c = show_call(0);
    CHECK(c.rc == MPTCPSTATE_RESULT_NETWORK_MANAGER);
    CHECK(c.out == NULL);
    CHECK_STR(c.err_kind, "NetworkManager");
    CHECK_HAS(c.err_msg, "kernel-only mode");
    call_free(&c);
    /* Kernel-only still works. */
    c = show_call(MPTCPSTATE_FLAG_KERNEL_ONLY);
    CHECK(c.rc == MPTCPSTATE_RESULT_OK);
    call_free(&c);
}

int main(void) {
    static const struct test tests[] = {
        {"kernel_only_yaml", test_kernel_only_yaml},
        {"full_json", test_full_json},
        {"show_output_is_valid_input", test_show_output_is_valid_input},
        {"bad_arguments", test_bad_arguments},
        {"no_networkmanager", test_no_networkmanager},
    };
    return run_tests("test_show", tests, sizeof tests / sizeof tests[0]);
}
