/* serve/test_control.h - the one entry point tests use to make a real server deterministic
 * (not installed; not part of the documented API).
 *
 * Like SQLite's sqlite3_test_control, amuse_test_control is exported so that a test program or
 * the `amuse` command's testing flags can reach it through the shared library, but no installed
 * header declares it: applications never see it. Settings are process-wide and should be made
 * before amuse_server_start. It does not make anything faster or safer; it only takes time out
 * of the tests.
 */
#ifndef AMUSE_SERVE_TEST_CONTROL_H
#define AMUSE_SERVE_TEST_CONTROL_H

#include "amuse/version.h"

enum {
    /* (int on): the clock the per-key rate limiter reads stands still from now on (1) or runs
     * again (0). With it frozen no token ever comes back, so which request of a burst is
     * answered 429 does not depend on how fast a busy machine sends them. */
    AMUSE_TESTCTRL_FREEZE_RATE_CLOCK = 1,
    /* (int ms, 0..60000): every model worker of a server started afterwards sleeps this long
     * before each batch, so a test can fill a queue or pass a deadline (0: off). */
    AMUSE_TESTCTRL_BATCH_SLEEP_MS = 2,
    /* (int on): a POST /v1/events batch of two or more events stops half-way inside its
     * transaction, logs "events: paused inside a batch" and waits there for good, so a test can
     * kill -9 the server at that point and check that the batch is all there or absent. */
    AMUSE_TESTCTRL_EVENTS_PAUSE = 3,
};

/* AMUSE_OK, or AMUSE_EINVAL for an unknown op. */
AMUSE_API int amuse_test_control(int op, ...);

/* The rate limiter's clock: am__now(), or the instant it was frozen. */
double am__rate_clock(void);
/* The batch sleep set by AMUSE_TESTCTRL_BATCH_SLEEP_MS (0: off). */
int am__test_batch_sleep_ms(void);
/* 1 while AMUSE_TESTCTRL_EVENTS_PAUSE is on. */
int am__test_events_pause(void);

/* The routing table, for documentation checks (amuse serve --routes, and the test that
 * docs/openapi.yaml names every route): for i = 0, 1, ... until NULL, *method and the path
 * pattern (with {model} and {version} placeholders). */
AMUSE_API const char *amuse_server_route(int i, const char **method);

#endif
