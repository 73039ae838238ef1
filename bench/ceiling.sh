#!/usr/bin/env bash
# ceiling.sh URL CLIENTS BODY...: sends pre-built gzip NDJSON bulk bodies to
# URL (an index's _bulk endpoint) with CLIENTS curl loops in parallel, body i
# going to loop i mod CLIENTS. The benchmark's Elasticsearch ceiling: no Kafka,
# no parsing, no JSON building, only HTTP and Elasticsearch's own work.
set -euo pipefail
url=$1 clients=$2
shift 2
bodies=("$@")
for ((c = 0; c < clients; c++)); do
  (
    for ((i = c; i < ${#bodies[@]}; i += clients)); do
      curl -sS -o /dev/null -H 'Content-Type: application/x-ndjson' -H 'Content-Encoding: gzip' \
           --data-binary @"${bodies[i]}" "$url"
    done
  ) &
done
wait
