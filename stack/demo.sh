#!/usr/bin/env bash
# The end-to-end demo behind `make demo`, through the local Airflow as MWAA
# would run it: unpause both DAGs, trigger log_generation_pipeline (15,000
# generated access-log lines into the Kafka topic `logs`), wait for it, then
# trigger log_consumer_pipeline (consume into Elasticsearch, then reconcile
# Kafka's committed offsets against Elasticsearch and the dead-letter topic)
# and print the reconcile result and where to look.
# The demo's topic, group and index are its own (DAG params), so the scheduled
# runs on the default topic `logs` cannot take its messages first.
# Expects the stack to be up (make demo runs `stack.sh up` first). The DAGs
# stay unpaused afterwards: the pipeline then runs every 5 minutes, as on MWAA.
set -euo pipefail
API=http://127.0.0.1:${LOGPIPE_AIRFLOW_PORT:-8080}/api/v2
ES=${LOGPIPE_ES:-http://127.0.0.1:9200}
COUNT=${DEMO_COUNT:-15000}
stamp=$(date +%Y%m%d%H%M%S)
TOPIC=logs-demo-$stamp
INDEX=logs-demo-$stamp

api() { curl -fsS -m 30 -H 'Content-Type: application/json' "$@"; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[k]
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$@"; }

run_dag() {
  local dag=$1 conf=$2 run state
  run=$(api -X POST "$API/dags/$dag/dagRuns" -d "{\"logical_date\": null, \"conf\": $conf}" | field dag_run_id)
  echo "== $dag: run $run triggered" >&2
  for _ in $(seq 1 300); do
    state=$(api "$API/dags/$dag/dagRuns/$run" | field state)
    case $state in
      success) echo "== $dag: success" >&2; echo "$run"; return 0 ;;
      failed) echo "demo: $dag run $run FAILED; task logs: http://127.0.0.1:${LOGPIPE_AIRFLOW_PORT:-8080}/dags/$dag" >&2
              return 1 ;;
    esac
    sleep 2
  done
  echo "demo: $dag run $run did not finish in 10 minutes" >&2
  return 1
}

for dag in log_generation_pipeline log_consumer_pipeline; do
  api -X PATCH "$API/dags/$dag" -d '{"is_paused": false}' >/dev/null
done

run=$(run_dag log_generation_pipeline "{\"count\": $COUNT, \"topic\": \"$TOPIC\"}")
api "$API/dags/log_generation_pipeline/dagRuns/$run/taskInstances/produce/xcomEntries/return_value" |
  field value | sed 's/^/   produce summary: /'

run=$(run_dag log_consumer_pipeline "{\"topic\": \"$TOPIC\", \"group\": \"logpipe-demo-$stamp\", \"index\": \"$INDEX\"}")
api "$API/dags/log_consumer_pipeline/dagRuns/$run/taskInstances/consume/xcomEntries/return_value?map_index=0" |
  field value | sed 's/^/   consume summary: /'
result=$(api "$API/dags/log_consumer_pipeline/dagRuns/$run/taskInstances/reconcile/xcomEntries/return_value" | field value)
echo
echo "$result" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("== reconcile: Kafka committed %(committed)d messages for group %(group)s on topic %(topic)s;" % r)
print("   Elasticsearch holds %(documents)d of them, the dead-letter topic %(dead_lettered)d: exact" % r)'
echo "== documents per http.response.status_code in $INDEX"
curl -fsS -H 'Content-Type: application/json' "$ES/$INDEX/_search" -d '{
  "size": 0, "aggs": {"status": {"terms": {"field": "http.response.status_code", "size": 20}}}}' |
  python3 -c '
import json, sys
for b in json.load(sys.stdin)["aggregations"]["status"]["buckets"]:
    print("  %3s  %7d" % (b["key"], b["doc_count"]))'
echo
echo "demo: ok. Airflow UI: http://127.0.0.1:${LOGPIPE_AIRFLOW_PORT:-8080}/ (both DAGs now run every 5 minutes;"
echo "      pause them there, or: stack/airflow.sh dags pause log_generation_pipeline)"
echo "      Search: curl '$ES/$INDEX/_search?q=http.response.status_code:500&size=3&pretty'"
