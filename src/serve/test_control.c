/* test_control.c - amuse_test_control: process-wide switches that tests flip to take time out of
 * a real server (see test_control.h). Nothing here is read on a hot path except one atomic load
 * per rate-limit check. It does not mock anything: the server runs its normal code with a clock
 * that the test chose. */
#include "serve/test_control.h"

#include "amuse/error.h"
#include "serve/serve_internal.h"

#include <stdarg.h>
#include <stdatomic.h>

static atomic_int rate_clock_frozen, batch_sleep_ms, events_pause;
static _Atomic double rate_clock_at;

int amuse_test_control(int op, ...)
{
    va_list ap;
    va_start(ap, op);
    int rc = AMUSE_OK;
    switch (op) {
    case AMUSE_TESTCTRL_FREEZE_RATE_CLOCK: {
        int on = va_arg(ap, int);
        if (on)
            atomic_store(&rate_clock_at, am__now());
        atomic_store(&rate_clock_frozen, on != 0);
        break;
    }
    case AMUSE_TESTCTRL_BATCH_SLEEP_MS: {
        int ms = va_arg(ap, int);
        if (ms < 0 || ms > 60000)
            rc = am__fail(AMUSE_EINVAL, "amuse_test_control: batch sleep %d ms is not 0 to 60000",
                          ms);
        else
            atomic_store(&batch_sleep_ms, ms);
        break;
    }
    case AMUSE_TESTCTRL_EVENTS_PAUSE:
        atomic_store(&events_pause, va_arg(ap, int) != 0);
        break;
    default:
        rc = am__fail(AMUSE_EINVAL, "amuse_test_control: unknown op %d", op);
    }
    va_end(ap);
    return rc;
}

int am__test_batch_sleep_ms(void)
{
    return atomic_load(&batch_sleep_ms);
}

int am__test_events_pause(void)
{
    return atomic_load(&events_pause);
}

double am__rate_clock(void)
{
    return atomic_load(&rate_clock_frozen) ? atomic_load(&rate_clock_at) : am__now();
}
