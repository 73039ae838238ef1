/*
 * test_watchdog.c: the watchdog ends the process with exit 5 and a message
 * naming the call once an armed deadline passes, and leaves it alone when
 * the call returns in time. Each case runs in a forked child, since the
 * watchdog's way out is _exit.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "consume/watchdog.h"
#include "core/timeutil.h"

/* Runs one case in a child with stderr into a pipe: its exit status, what it
 * wrote, and how long it took. */
static int run_child(int overrun, char *err, size_t errsz, int64_t *took_ms)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    int64_t start = lp_monotonic_ms();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        lp_watchdog_start("consume");
        lp_watchdog_arm("send_offsets_to_transaction", 200);
        usleep(overrun ? 5000 * 1000 : 50 * 1000);
        lp_watchdog_disarm();
        usleep(600 * 1000); /* past the old deadline: nothing may fire now */
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], err, errsz - 1);
    err[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *took_ms = lp_monotonic_ms() - start;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
    char err[1024];
    int64_t took;
    CHECK_INT(run_child(1, err, sizeof err, &took), 5);
    CHECK(strstr(err, "send_offsets_to_transaction has not returned") != NULL);
    CHECK(strstr(err, "will be consumed again") != NULL);
    CHECK(took < 3000);
    CHECK_INT(run_child(0, err, sizeof err, &took), 0);
    CHECK_INT((long long)strlen(err), 0);
    return CHECK_DONE();
}
