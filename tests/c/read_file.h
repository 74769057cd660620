/* Reads a whole file for the C tests of the shared input tables (bad_inputs.c,
 * good_inputs.c). */
#ifndef MPTCPSTATE_TEST_READ_FILE_H
#define MPTCPSTATE_TEST_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

/* Reads a whole file, NUL-terminated. NULL on failure. */
static inline char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (ferror(f) || feof(f))
            break;
        char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

#endif
