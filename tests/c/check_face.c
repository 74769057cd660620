/* The C face of `check` (run by tests/kernel/test_check.py inside a sandbox namespace):
 * one call of mptcpstate_check, the findings printed on stdout, the log on stderr.
 *
 *   check_face [--kernel] [--yaml]     exit 0 when the call succeeded, else its code
 *   check_face --null-report           mptcpstate_check with a NULL report: must be
 *                                      InvalidArgument, and every other out-parameter set
 *
 * Every string the library returns is freed, so it runs under valgrind too. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mptcpstate.h>

int main(int argc, char **argv) {
    uint32_t flags = 0;
    int null_report = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kernel") == 0)
            flags |= MPTCPSTATE_FLAG_KERNEL_ONLY;
        else if (strcmp(argv[i], "--yaml") == 0)
            flags |= MPTCPSTATE_FLAG_YAML_OUTPUT;
        else if (strcmp(argv[i], "--null-report") == 0)
            null_report = 1;
        else {
            fprintf(stderr, "check_face: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    char *report = NULL, *log = NULL, *kind = NULL, *msg = NULL;
    int code = mptcpstate_check(flags, null_report ? NULL : &report, &log, &kind, &msg);
    if (null_report) {
        int ok = code == MPTCPSTATE_RESULT_INVALID_ARGUMENT && log != NULL && kind != NULL &&
                 strcmp(kind, "InvalidArgument") == 0 && msg != NULL;
        mptcpstate_cstring_free(log);
        mptcpstate_cstring_free(kind);
        mptcpstate_cstring_free(msg);
        return ok ? 0 : 3;
    }
    if (log != NULL)
        fprintf(stderr, "%s\n", log);
    if (code == MPTCPSTATE_RESULT_OK)
        fputs(report, stdout);
    else
        fprintf(stderr, "%s: %s\n", kind, msg);
    mptcpstate_cstring_free(report);
    mptcpstate_cstring_free(log);
    mptcpstate_cstring_free(kind);
    mptcpstate_cstring_free(msg);
    return code;
}
