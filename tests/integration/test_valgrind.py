"""The consumer runs leak-free under valgrind on a short run against the real
stack, including the dead-letter path (malformed lines) and a clean group leave."""

import subprocess

from helpers import run


def test_consume_is_leak_free_under_valgrind(logpipe_bin, kafka, es, topic, unique):
    if "asan" in logpipe_bin:
        logpipe_bin = logpipe_bin.replace("build-asan", "build")  # valgrind and ASan do not mix
    r = run(logpipe_bin, "produce", "-b", kafka, "-t", topic, "--count", "3000", "--malformed-ratio", "0.05")
    assert r.code == 0, r.stderr
    p = subprocess.run(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                        "--error-exitcode=99", "--quiet", logpipe_bin, "consume", "-b", kafka, "-t", topic,
                        "-g", unique, "-e", es, "-i", unique, "--until-idle", "3"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-4000:]
    assert '"consumed":3000' in p.stdout
    assert "definitely lost" not in p.stderr
