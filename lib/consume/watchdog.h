/*
 * watchdog.h: ends consume when a librdkafka transaction call overruns its
 * own timeout by far. See watchdog.c for why a thread of its own does it.
 */
#ifndef LP_WATCHDOG_H
#define LP_WATCHDOG_H

#include <stdint.h>

/* How far past its timeout a call may run before the process ends. */
#define LP_WATCHDOG_GRACE_MS 60000

/* Starts the watching thread (once; later calls do nothing). command names
 * the process in the exit message ("consume"). */
void lp_watchdog_start(const char *command);

/* Before a blocking call: the process ends with exit 5 if the call has not
 * returned (lp_watchdog_disarm) within budget_ms. call names it in the
 * message and must be a string literal (it is kept, not copied). */
void lp_watchdog_arm(const char *call, int64_t budget_ms);
void lp_watchdog_disarm(void);

#endif
