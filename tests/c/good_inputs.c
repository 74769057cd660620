/* The shared table of good inputs, through the C ABI.
 *
 *   good_inputs TABLE
 *
 * TABLE is what `python3 tests/fixtures/good/materialize.py TABLE` writes: one line per
 * case, `name<TAB>input path<TAB>expected path`. Each input goes to mptcpstate_format
 * (YAML), whose output must be the expected file byte for byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mptcpstate.h>

#include "read_file.h"

static void free_all(char *out, char *log, char *kind, char *msg) {
    mptcpstate_cstring_free(out);
    mptcpstate_cstring_free(log);
    mptcpstate_cstring_free(kind);
    mptcpstate_cstring_free(msg);
}

/* One case; prints why it failed. Returns 1 when it passed. */
static int check_one(const char *name, const char *input, const char *expected) {
    char *out = NULL, *log = NULL, *kind = NULL, *msg = NULL;
    int ok = 1;
    enum mptcpstate_result rc =
        mptcpstate_format(MPTCPSTATE_FLAG_YAML_OUTPUT, input, &out, &log, &kind, &msg);
    if (rc != MPTCPSTATE_RESULT_OK) {
        printf("  %s format: returned %d: %s: %s\n", name, (int)rc, kind ? kind : "NULL",
               msg ? msg : "NULL");
        ok = 0;
    } else if (out == NULL || strcmp(out, expected) != 0) {
        printf("  %s format: got\n%s\nexpected\n%s\n", name, out ? out : "NULL", expected);
        ok = 0;
    }
    free_all(out, log, kind, msg);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s TABLE (from tests/fixtures/good/materialize.py)\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *table = read_file(argv[1]);
    if (table == NULL) {
        perror(argv[1]);
        return 2;
    }
    int passed = 0, failed = 0;
    char *line = table;
    while (line != NULL && *line != '\0') {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *input_path = strchr(line, '\t');
        char *expected_path = input_path ? strchr(input_path + 1, '\t') : NULL;
        if (expected_path == NULL) {
            line = next;
            continue;
        }
        *input_path++ = '\0';
        *expected_path++ = '\0';
        char *input = read_file(input_path);
        char *expected = read_file(expected_path);
        if (input == NULL || expected == NULL) {
            printf("  %s: cannot read %s\n", line, input == NULL ? input_path : expected_path);
            failed++;
        } else if (check_one(line, input, expected)) {
            passed++;
        } else {
            failed++;
        }
        free(input);
        free(expected);
        line = next;
    }
    free(table);
    printf("good inputs: %d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
