#!/usr/bin/env bash
# The end-to-end demo behind `make demo`: generate 100,000 access-log lines
# into a fresh Kafka topic, consume them into Elasticsearch with a consumer
# group, then show that the counts reconcile (Kafka offsets = documents +
# dead-lettered) and one aggregation (documents per status code).
# Expects the stack to be up (make demo runs `stack.sh up` first).
set -euo pipefail
LOGPIPE=${1:-build/logpipe}
KAFKA=${LOGPIPE_KAFKA:-127.0.0.1:9092}
ES=${LOGPIPE_ES:-http://127.0.0.1:9200}
COUNT=${DEMO_COUNT:-100000}
run=$(date +%Y%m%d%H%M%S)
topic="demo-logs-$run"
index="demo-logs-$run"

echo "== producing $COUNT generated lines to topic $topic"
"$LOGPIPE" produce --brokers "$KAFKA" --topic "$topic" --count "$COUNT" --seed 42

echo "== consuming into Elasticsearch index $index (group demo-$run)"
summary=$("$LOGPIPE" consume --brokers "$KAFKA" --topic "$topic" --group "demo-$run" \
          --es "$ES" --index "$index" --until-idle 5)
echo "$summary"

curl -fsS -XPOST "$ES/$index/_refresh" >/dev/null
docs=$(curl -fsS "$ES/$index/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
dlq=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["dead_lettered"])' "$summary")
echo
echo "== reconcile: produced $COUNT, indexed $docs, dead-lettered $dlq"
if [ $((docs + dlq)) -ne "$COUNT" ]; then
  echo "demo: MISMATCH: $docs documents + $dlq dead-lettered != $COUNT produced" >&2
  exit 1
fi
echo "== documents per http.response.status_code"
curl -fsS -H 'Content-Type: application/json' "$ES/$index/_search" -d '{
  "size": 0, "aggs": {"status": {"terms": {"field": "http.response.status_code", "size": 20}}}}' |
  python3 -c '
import json, sys
for b in json.load(sys.stdin)["aggregations"]["status"]["buckets"]:
    print("  %3s  %7d" % (b["key"], b["doc_count"]))'
echo
echo "demo: ok. Explore with: curl '$ES/$index/_search?q=http.response.status_code:500&size=3&pretty'"
