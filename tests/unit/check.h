/*
 * check.h: the unit tests' assertion macros. Small on purpose: each test file
 * is one ctest executable; a failed check prints file:line and the values,
 * and main returns non-zero when any check failed.
 */
#ifndef LP_CHECK_H
#define LP_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_INT(a, b)                                                                         \
    do {                                                                                        \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                   \
        check_count++;                                                                          \
        if (va_ != vb_) {                                                                       \
            check_failures++;                                                                   \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, va_, vb_); \
        }                                                                                       \
    } while (0)

#define CHECK_STR(a, b)                                                                       \
    do {                                                                                      \
        const char *sa_ = (a), *sb_ = (b);                                                    \
        check_count++;                                                                        \
        if (!sa_ || !sb_ || strcmp(sa_, sb_)) {                                               \
            check_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s\n  got:      %s\n  expected: %s\n", __FILE__, __LINE__, \
                    #a, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                          \
        }                                                                                     \
    } while (0)

/* Substring check, for messages and documents. */
#define CHECK_CONTAINS(hay, needle)                                                            \
    do {                                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                                \
        check_count++;                                                                         \
        if (!h_ || !strstr(h_, n_)) {                                                          \
            check_failures++;                                                                  \
            fprintf(stderr, "%s:%d: \"%s\" not found in: %s\n", __FILE__, __LINE__, n_,        \
                    h_ ? h_ : "(null)");                                                       \
        }                                                                                      \
    } while (0)

#define CHECK_DONE()                                                                     \
    (fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures), \
     check_failures ? 1 : 0)

#endif
