/* The C face of the apply scenarios (tests/fixtures/apply, run by tests/nm/test_apply.py):
 * one call of libmptcpstate, its outcome printed as one JSON object
 * {"code", "kind", "msg", "checkpoint", "log"} (log: the array of log records the call
 * returned, as the library gave it).
 *
 *   apply_face apply [--kernel] [--no-commit] [--timeout SEC] [--memory-only] [--no-verify]
 *                    [--dry-run] [--plan] < state
 *       --dry-run: MPTCPSTATE_FLAG_DRY_RUN; with --dry-run or --plan the call is
 *       mptcpstate_apply_plan and its plan is printed as "plan" (raw JSON)
 *   apply_face commit|rollback [CHECKPOINT]
 *   apply_face show [--kernel]       the state shown, as "state" (a JSON string)
 *
 * Every string the library returns is freed, so the scenarios can also run under
 * valgrind (tests/nm/faces.py, MPTCPSTATE_FACE_VALGRIND=1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mptcpstate.h>

static void json_string(const char *s) {
    if (s == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static char *read_all(FILE *f) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: apply_face apply|commit|rollback ...\n");
        return 2;
    }
    char *checkpoint = NULL, *log = NULL, *kind = NULL, *msg = NULL, *shown = NULL;
    char *plan = NULL;
    int want_plan = 0;
    int code;
    if (strcmp(argv[1], "apply") == 0) {
        uint32_t flags = 0, timeout = 60;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--kernel") == 0)
                flags |= MPTCPSTATE_FLAG_KERNEL_ONLY;
            else if (strcmp(argv[i], "--no-commit") == 0)
                flags |= MPTCPSTATE_FLAG_NO_COMMIT;
            else if (strcmp(argv[i], "--memory-only") == 0)
                flags |= MPTCPSTATE_FLAG_MEMORY_ONLY;
            else if (strcmp(argv[i], "--no-verify") == 0)
                flags |= MPTCPSTATE_FLAG_NO_VERIFY;
            else if (strcmp(argv[i], "--dry-run") == 0) {
                flags |= MPTCPSTATE_FLAG_DRY_RUN;
                want_plan = 1;
            } else if (strcmp(argv[i], "--plan") == 0)
                want_plan = 1;
            else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
                timeout = (uint32_t)strtoul(argv[++i], NULL, 10);
            else {
                fprintf(stderr, "apply_face: unknown argument %s\n", argv[i]);
                return 2;
            }
        }
        char *state = read_all(stdin);
        if (state == NULL)
            return 2;
        if (want_plan)
            code = mptcpstate_apply_plan(flags, state, timeout, &checkpoint, &plan, &log, &kind,
                                         &msg);
        else
            code = mptcpstate_apply(flags, state, timeout, &checkpoint, &log, &kind, &msg);
        free(state);
    } else if (strcmp(argv[1], "commit") == 0) {
        code = mptcpstate_checkpoint_commit(argc > 2 ? argv[2] : NULL, &log, &kind, &msg);
    } else if (strcmp(argv[1], "rollback") == 0) {
        code = mptcpstate_checkpoint_rollback(argc > 2 ? argv[2] : NULL, &log, &kind, &msg);
    } else if (strcmp(argv[1], "show") == 0) {
        uint32_t flags = 0;
        if (argc > 2 && strcmp(argv[2], "--kernel") == 0)
            flags |= MPTCPSTATE_FLAG_KERNEL_ONLY;
        code = mptcpstate_show(flags, &shown, &log, &kind, &msg);
    } else {
        fprintf(stderr, "apply_face: unknown command %s\n", argv[1]);
        return 2;
    }
    printf("{\"code\": %d, \"kind\": ", code);
    json_string(kind);
    fputs(", \"msg\": ", stdout);
    json_string(msg);
    fputs(", \"checkpoint\": ", stdout);
    json_string(checkpoint);
    fputs(", \"state\": ", stdout);
    json_string(shown);
    /* The plan and the log are JSON already. */
    printf(", \"plan\": %s", plan != NULL ? plan : "null");
    printf(", \"log\": %s}\n", log != NULL ? log : "null");
    mptcpstate_cstring_free(plan);
    mptcpstate_cstring_free(checkpoint);
    mptcpstate_cstring_free(shown);
    mptcpstate_cstring_free(log);
    mptcpstate_cstring_free(kind);
    mptcpstate_cstring_free(msg);
    return 0;
}
