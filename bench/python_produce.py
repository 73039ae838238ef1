"""The Python producer baselines for bench/run.py: confluent-kafka, written
the seed's way (produce, then flush after every message) or batched (one
flush at the end). Reads lines from a file; prints messages/s as JSON."""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Producer


def main() -> None:
    brokers, topic, path, mode, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    p = Producer({"bootstrap.servers": brokers})
    with open(path, "rb") as f:
        lines = [line.rstrip(b"\n") for _, line in zip(range(limit), f, strict=False)]
    t0 = time.perf_counter()
    for line in lines:
        while True:
            try:
                p.produce(topic, line)
                break
            except BufferError:
                p.poll(0.05)
        if mode == "seed":
            p.flush()
    p.flush()
    secs = time.perf_counter() - t0
    print(json.dumps({"messages": len(lines), "seconds": secs, "msgs_per_s": len(lines) / secs}))


if __name__ == "__main__":
    main()
