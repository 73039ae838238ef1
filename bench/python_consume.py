"""The Python consumer baseline for bench/run.py, the seed's way:
confluent-kafka with auto-commit, each polled batch parsed with the regex
baseline (baseline_parse.document) and indexed with elasticsearch-py's
helpers.bulk. Stops after `count` messages; prints documents/s as JSON."""

from __future__ import annotations

import json
import sys
import time

from baseline_parse import SEED, document
from confluent_kafka import Consumer
from elasticsearch import Elasticsearch, helpers


def main() -> None:
    brokers, topic, group, es_url, index, count = sys.argv[1:7]
    total = int(count)
    es = Elasticsearch(es_url, request_timeout=120)
    c = Consumer({"bootstrap.servers": brokers, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    done = 0
    t0 = time.perf_counter()
    while done < total:
        msgs = c.consume(num_messages=500, timeout=1.0)
        actions = []
        for m in msgs:
            if m.error():
                continue
            done += 1
            match = SEED.match(m.value().decode("utf-8", "replace"))
            if match:
                actions.append({"_index": index, "_id": f"{m.topic()}-{m.partition()}-{m.offset()}",
                                "_source": document(match, "seed")})
        if actions:
            helpers.bulk(es, actions, chunk_size=500)
    secs = time.perf_counter() - t0
    c.close()
    print(json.dumps({"documents": done, "seconds": secs, "docs_per_s": done / secs}))


if __name__ == "__main__":
    main()
