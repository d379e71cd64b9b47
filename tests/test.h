/* test.h - a tiny test harness: typed assertions that print both sides, one binary per module.
 *
 *   TEST(shape_size) { ASSERT_EQ_INT(amuse_shape_size(&s), 6); }
 *   int main(void) { RUN(shape_size); return test_summary(); }
 *
 * A failed assertion reports file:line and both values, and ends the current test (not the binary).
 */
#ifndef AMUSE_TEST_H
#define AMUSE_TEST_H

#include "amuse/error.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures, test_count;
static jmp_buf test_jump;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        test_count++;                                                                              \
        amuse_clear_error();                                                                       \
        if (setjmp(test_jump) == 0) {                                                              \
            test_##name();                                                                         \
            printf("ok   %s\n", #name);                                                            \
        } else {                                                                                   \
            test_failures++;                                                                       \
            printf("FAIL %s\n", #name);                                                            \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#define TEST_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        longjmp(test_jump, 1);                                                                     \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            TEST_FAIL("expected true: %s", #c);                                                    \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_)                                                                            \
            TEST_FAIL("%s == %s: %lld != %lld", #a, #b, va_, vb_);                                 \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                                                     \
    do {                                                                                           \
        double va_ = (double)(a), vb_ = (double)(b);                                               \
        if (!(fabs(va_ - vb_) <= (tol)))                                                           \
            TEST_FAIL("%s ~= %s: %.9g vs %.9g (tolerance %g)", #a, #b, va_, vb_, (double)(tol));   \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *va_ = (a), *vb_ = (b);                                                         \
        if (strcmp(va_, vb_) != 0)                                                                 \
            TEST_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, va_, vb_);                             \
    } while (0)

#define ASSERT_CONTAINS(haystack, needle)                                                          \
    do {                                                                                           \
        const char *vh_ = (haystack), *vn_ = (needle);                                             \
        if (!vh_ || !strstr(vh_, vn_))                                                             \
            TEST_FAIL("\"%s\" does not contain \"%s\"", vh_ ? vh_ : "(null)", vn_);                \
    } while (0)

/* The call must succeed; on failure print the library's message. */
#define ASSERT_OK(call)                                                                            \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != AMUSE_OK)                                                                       \
            TEST_FAIL("%s failed: %s (%s)", #call, amuse_strerror(rc_), amuse_last_error());       \
    } while (0)

/* The call must fail with the given status and a message that contains the given text. */
#define ASSERT_FAILS(call, status, text)                                                           \
    do {                                                                                           \
        amuse_clear_error();                                                                       \
        int rc_ = (call);                                                                          \
        if (rc_ != (status))                                                                       \
            TEST_FAIL("%s returned %d (%s), expected %d; message: %s", #call, rc_,                 \
                      amuse_strerror(rc_), (status), amuse_last_error());                          \
        ASSERT_CONTAINS(amuse_last_error(), text);                                                 \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_count - test_failures, test_failures);
    return test_failures ? 1 : 0;
}

#endif
