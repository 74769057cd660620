/* A few helpers shared by the C tests: checks that count failures, and calls that keep
 * every out-parameter in one place and free them together. */
#ifndef MPTCPSTATE_TEST_CHECK_H
#define MPTCPSTATE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include <mptcpstate.h>

/* Failures of the current thread's test; the thread test keeps one per thread. */
static _Thread_local int failures;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* `s` is not NULL and contains `needle`. */
#define CHECK_HAS(s, needle)                                                             \
    do {                                                                                 \
        const char *check_s_ = (s);                                                      \
        if (check_s_ == NULL || strstr(check_s_, (needle)) == NULL) {                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s does not contain \"%s\": %s\n",     \
                    __FILE__, __LINE__, #s, (needle), check_s_ ? check_s_ : "(NULL)");   \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

#define CHECK_STR(s, expected)                                                           \
    do {                                                                                 \
        const char *check_s_ = (s);                                                      \
        if (check_s_ == NULL || strcmp(check_s_, (expected)) != 0) {                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s is \"%s\", expected \"%s\"\n",      \
                    __FILE__, __LINE__, #s, check_s_ ? check_s_ : "(NULL)", (expected)); \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* One call's outputs. */
struct call {
    enum mptcpstate_result rc;
    char *out; /* the main output */
    char *log;
    char *err_kind;
    char *err_msg;
};

typedef enum mptcpstate_result (*call_fn)(uint32_t, const char *, char **, char **, char **,
                                          char **);

static inline struct call call_with(call_fn fn, uint32_t flags, const char *input) {
    struct call c;
    c.rc = fn(flags, input, &c.out, &c.log, &c.err_kind, &c.err_msg);
    return c;
}

static inline struct call format_call(uint32_t flags, const char *input) {
    return call_with(mptcpstate_format, flags, input);
}

static inline struct call gc_call(uint32_t flags, const char *input) {
    return call_with(mptcpstate_generate_configurations, flags, input);
}

static inline void call_free(struct call *c) {
    mptcpstate_cstring_free(c->out);
    mptcpstate_cstring_free(c->log);
    mptcpstate_cstring_free(c->err_kind);
    mptcpstate_cstring_free(c->err_msg);
    memset(c, 0, sizeof *c);
}

/* The number of (non-overlapping) occurrences of `needle` in `s`. */
static inline int count_of(const char *s, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    while (s != NULL && len > 0 && (s = strstr(s, needle)) != NULL) {
        n++;
        s += len;
    }
    return n;
}

/* Runs each test, printing one line per test and the closing "N passed, M failed" line;
 * returns the process exit status. */
struct test {
    const char *name;
    void (*fn)(void);
};

static inline int run_tests(const char *program, const struct test *tests, size_t n) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failures = 0;
        tests[i].fn();
        printf("%s %s\n", failures ? "FAIL" : "ok  ", tests[i].name);
        failed += failures != 0;
    }
    printf("%s: %zu passed, %d failed\n", program, n - (size_t)failed, failed);
    return failed ? 1 : 0;
}

#endif
