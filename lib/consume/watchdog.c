/*
 * watchdog.c: a blocked librdkafka call cannot hang a consume run.
 *
 * The transactional calls of librdkafka take a timeout, and consume relies on
 * it: a commit that times out is retried, then aborted, and the run goes on
 * or stops with exit 5. But send_offsets_to_transaction can block past its
 * timeout: the coordinator request it makes never checks its deadline when
 * the cached coordinator is down (confluentinc/librdkafka#5456, open, seen in
 * 2.14 and here in 2.0.2 as a member silent for 200+ s after a rolling broker
 * restart). Such a call cannot be cancelled, and the loop that would notice
 * is the one blocked in it, so a thread of its own watches a deadline the
 * loop arms before each transactional call.
 *
 * Past the deadline the process exits 5 at once, as a kill -9 would stop it:
 * nothing since the last commit is committed (the open transaction is aborted
 * by its coordinator after transaction.timeout.ms, its dead letters never
 * visible to read_committed readers), and the next run or the partitions'
 * next owner reads those messages again; documents already indexed are
 * overwritten by _id. The fault suite proves that path exact
 * (test_faults.py::test_kill_9_at_five_random_moments). Exiting is better
 * than waiting: an Airflow task then fails and retries within its schedule,
 * a service is restarted by its supervisor, and the partitions are rebalanced
 * to live members instead of held by a silent one.
 */
#include "consume/watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/timeutil.h"

static _Atomic int64_t deadline_ms; /* 0: nothing armed */
static _Atomic int64_t armed_ms;
static const char *_Atomic armed_call;
static const char *watched_command = "consume";
static pthread_once_t started = PTHREAD_ONCE_INIT;

static void *watch(void *unused)
{
    (void)unused;
    for (;;) {
        usleep(250 * 1000);
        int64_t deadline = atomic_load(&deadline_ms), now = lp_monotonic_ms();
        if (!deadline || now < deadline)
            continue;
        lp_log(LP_LOG_ERROR, watched_command, LP_EXIT_PARTIAL,
               "Kafka: %s has not returned after %.0f s (librdkafka did not honour its timeout): exiting; "
               "the messages since the last commit were not committed and will be consumed again",
               atomic_load(&armed_call), (double)(now - atomic_load(&armed_ms)) / 1000);
        fflush(stderr);
        _exit(LP_EXIT_PARTIAL);
    }
    return NULL;
}

static void start_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, watch, NULL) == 0)
        pthread_detach(t);
}

void lp_watchdog_start(const char *command)
{
    watched_command = command;
    pthread_once(&started, start_thread);
}

void lp_watchdog_arm(const char *call, int64_t budget_ms)
{
    int64_t now = lp_monotonic_ms();
    atomic_store(&armed_call, call);
    atomic_store(&armed_ms, now);
    atomic_store(&deadline_ms, now + budget_ms);
}

void lp_watchdog_disarm(void)
{
    atomic_store(&deadline_ms, 0);
}
