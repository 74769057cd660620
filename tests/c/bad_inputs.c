/* The shared table of bad inputs, through the C ABI.
 *
 *   bad_inputs OUTDIR
 *
 * OUTDIR is what `python3 tests/fixtures/bad/materialize.py OUTDIR` writes: one
 * OUTDIR/<name>.input per case (raw bytes) and OUTDIR/cases.tsv with one line per case,
 * `name<TAB>kind<TAB>substring...`. Each input goes to mptcpstate_format and
 * mptcpstate_generate_configurations; both must return the kind's code, `err_kind` must be
 * the kind's name, and every substring must be in `err_msg`. An input holding a NUL byte
 * is a C string only as far as that byte: that is what a C caller can pass. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mptcpstate.h>

#include "read_file.h"

static const struct {
    const char *name;
    enum mptcpstate_result code;
} KINDS[] = {
    {"InvalidArgument", MPTCPSTATE_RESULT_INVALID_ARGUMENT},
    {"NotSupported", MPTCPSTATE_RESULT_NOT_SUPPORTED},
    {"PermissionDenied", MPTCPSTATE_RESULT_PERMISSION_DENIED},
    {"NetworkManager", MPTCPSTATE_RESULT_NETWORK_MANAGER},
    {"Kernel", MPTCPSTATE_RESULT_KERNEL},
    {"Verification", MPTCPSTATE_RESULT_VERIFICATION},
    {"Timeout", MPTCPSTATE_RESULT_TIMEOUT},
    {"Busy", MPTCPSTATE_RESULT_BUSY},
    {"Bug", MPTCPSTATE_RESULT_BUG},
};

/* One function on one case; prints why it failed. Returns 1 when it passed. */
static int check_one(const char *fn_name,
                     enum mptcpstate_result (*fn)(uint32_t, const char *, char **, char **,
                                                  char **, char **),
                     const char *case_name, const char *input, const char *kind,
                     enum mptcpstate_result code, char **substrings, int nsub) {
    char *out, *log, *err_kind, *err_msg;
    enum mptcpstate_result rc = fn(0, input, &out, &log, &err_kind, &err_msg);
    int ok = 1;
    if (rc != code) {
        printf("  %s %s: returned %d, expected %d (%s)\n", case_name, fn_name, (int)rc,
               (int)code, kind);
        ok = 0;
    }
    if (err_kind == NULL || strcmp(err_kind, kind) != 0) {
        printf("  %s %s: err_kind is %s, expected %s\n", case_name, fn_name,
               err_kind ? err_kind : "NULL", kind);
        ok = 0;
    }
    for (int i = 0; i < nsub; i++) {
        if (err_msg == NULL || strstr(err_msg, substrings[i]) == NULL) {
            printf("  %s %s: err_msg lacks \"%s\": %s\n", case_name, fn_name, substrings[i],
                   err_msg ? err_msg : "NULL");
            ok = 0;
        }
    }
    if (out != NULL) {
        printf("  %s %s: output given on error\n", case_name, fn_name);
        ok = 0;
    }
    if (log == NULL || log[0] != '[') {
        printf("  %s %s: no log\n", case_name, fn_name);
        ok = 0;
    }
    mptcpstate_cstring_free(out);
    mptcpstate_cstring_free(log);
    mptcpstate_cstring_free(err_kind);
    mptcpstate_cstring_free(err_msg);
    return ok;
}

#define MAX_FIELDS 64

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR (from tests/fixtures/bad/materialize.py)\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argv[1];
    size_t pathlen = strlen(dir) + 32;
    char *path = malloc(pathlen);
    if (path == NULL)
        return 2;
    snprintf(path, pathlen, "%s/cases.tsv", dir);
    char *table = read_file(path);
    if (table == NULL) {
        perror(path);
        free(path);
        return 2;
    }

    int passed = 0, failed = 0;
    char *line = table;
    while (line != NULL && *line != '\0') {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0) {
            line = next;
            continue;
        }

        char *fields[MAX_FIELDS];
        int nfields = 0;
        for (char *field = line; field != NULL && nfields < MAX_FIELDS; nfields++) {
            fields[nfields] = field;
            field = strchr(field, '\t');
            if (field != NULL)
                *field++ = '\0';
        }
        const char *name = fields[0];
        int ok = 1;
        if (nfields < 2) {
            printf("  %s: malformed line in cases.tsv (no kind)\n", name);
            ok = 0;
        }

        const char *kind = nfields >= 2 ? fields[1] : "";
        enum mptcpstate_result code = MPTCPSTATE_RESULT_OK;
        for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
            if (strcmp(KINDS[k].name, kind) == 0)
                code = KINDS[k].code;
        if (ok && code == MPTCPSTATE_RESULT_OK) {
            printf("  %s: unknown kind \"%s\" in cases.tsv\n", name, kind);
            ok = 0;
        }

        char *input = NULL;
        size_t need = strlen(dir) + strlen(name) + 16;
        if (need > pathlen) {
            char *bigger = realloc(path, need);
            if (bigger == NULL) {
                free(path);
                free(table);
                return 2;
            }
            path = bigger;
            pathlen = need;
        }
        snprintf(path, pathlen, "%s/%s.input", dir, name);
        if (ok && (input = read_file(path)) == NULL) {
            printf("  %s: cannot read %s\n", name, path);
            ok = 0;
        }
        if (ok) {
            char **subs = fields + 2;
            int nsub = nfields - 2;
            ok &= check_one("format", mptcpstate_format, name, input, kind, code, subs, nsub);
            ok &= check_one("generate_configurations", mptcpstate_generate_configurations, name,
                            input, kind, code, subs, nsub);
        }
        free(input);
        printf("%s %s\n", ok ? "ok  " : "FAIL", name);
        if (ok)
            passed++;
        else
            failed++;
        line = next;
    }
    free(table);
    free(path);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
