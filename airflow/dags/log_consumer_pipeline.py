"""log_consumer_pipeline: Kafka into Elasticsearch, every 5 minutes, reconciled.

snapshot -> consume (x `consumers`, one consumer group) -> reconcile.
The consumers are bounded (they stop when idle, and never run past
`max_seconds`, kept under the 5-minute schedule) and scale the way Kafka
scales: N mapped tasks in one group share the topic's partitions, on
however many Airflow workers there are. `reconcile` then proves the run
exact from Kafka's and Elasticsearch's own numbers (logpipe_airflow.reconcile).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from logpipe_airflow import params as where
from logpipe_airflow.compat import DAG, Param
from logpipe_airflow.operators import LogpipeConsumeOperator

try:  # Airflow 3.x
    from airflow.sdk import task
except ImportError:  # Airflow 2.x
    from airflow.decorators import task

DOC = """
### log_consumer_pipeline
Indexes the Kafka topic `params.topic` into Elasticsearch with `logpipe consume`
(connections `params.kafka_conn_id` and `params.es_conn_id`: `kafka_default` and
`elasticsearch_default` unless changed), then reconciles. Or set `params.secrets` to
`aws-sm://MWAA_Secrets`: one JSON secret with docs/secrets.md's keys replaces both
connections, read on the worker with its execution role (docs/secrets.md).

1. **snapshot**: where consumer group `params.group` stands on each partition.
2. **consume**: `params.consumers` mapped tasks in that one group; each stops when
   caught up and idle for `params.until_idle` s, or after `params.max_seconds`.
   Their XCom is logpipe's run summary, with `lag` per partition and `backlog`
   (what is left when a member stops): a backlog is a warning in the task log,
   and fails the task when `params.fail_on_backlog` is on.
3. **reconcile**: the offsets committed this run must equal the documents in
   Elasticsearch for those offsets plus the records in the dead-letter topic for
   them. It fails, naming both numbers, when they differ.

Where a run reads and writes is fenced (logpipe_airflow/params.py): `topic`
`logs[.-_]...`, `dlq_topic` empty or `logs...dlq`, `group` `logpipe-...`,
`index` `logs-...`, connections `kafka_...` and `elasticsearch_...`; a
trigger with anything else is refused.
"""

with DAG(
    dag_id="log_consumer_pipeline",
    description="Kafka into Elasticsearch through logpipe consume, reconciled against Kafka's offsets",
    doc_md=DOC,
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["logpipe", "kafka", "elasticsearch", "consumer"],
    default_args={"owner": "logpipe", "retries": 1, "retry_delay": timedelta(seconds=5)},
    params={
        "topic": where.topic(),
        "group": where.group("logpipe-elasticsearch"),
        "index": where.index("logs-access-%Y.%m.%d"),
        "data_stream": Param(False, type="boolean",
                             description="index names a data stream (logs-access-default): logpipe consume --data-stream"),
        "dlq_topic": where.dlq_topic(),
        "consumers": Param(1, type="integer", minimum=1, maximum=64),
        "until_idle": Param(10, type="number", minimum=1),
        "max_seconds": Param(240, type="number", minimum=1, maximum=280),
        "fail_on_backlog": Param(False, type="boolean"),
        "kafka_conn_id": where.kafka_conn_id(),
        "es_conn_id": where.es_conn_id(),
        "secrets": where.secrets("both connections"),
    },
) as dag:

    @task(multiple_outputs=False)
    def snapshot(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from logpipe_airflow import reconcile
        from logpipe_airflow.connections import KafkaConnection

        assert params is not None
        kafka = KafkaConnection.for_task(params["kafka_conn_id"], params["secrets"])
        return reconcile.snapshot(kafka, params["group"], params["topic"])

    @task
    def members(params: dict[str, Any] | None = None) -> list[int]:
        assert params is not None
        return list(range(int(params["consumers"])))

    @task(multiple_outputs=False)
    def reconcile_run(snap: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from logpipe_airflow import reconcile
        from logpipe_airflow.connections import ElasticsearchConnection, KafkaConnection

        assert params is not None
        result = reconcile.reconcile(KafkaConnection.for_task(params["kafka_conn_id"], params["secrets"]),
                                     ElasticsearchConnection.for_task(params["es_conn_id"], params["secrets"]),
                                     snap, params["index"], params["dlq_topic"] or None)
        print(f"reconcile ok: {result['committed']} committed = {result['documents']} documents + "
              f"{result['dead_lettered']} dead-lettered")
        return result

    snap = snapshot()
    consume = LogpipeConsumeOperator.partial(
        task_id="consume",
        topic="{{ params.topic }}",
        group="{{ params.group }}",
        index="{{ params.index }}",
        data_stream="{{ params.data_stream }}",
        dlq_topic="{{ params.dlq_topic }}",
        until_idle="{{ params.until_idle }}",
        max_seconds="{{ params.max_seconds }}",
        fail_on_backlog="{{ params.fail_on_backlog }}",
        kafka_conn_id="{{ params.kafka_conn_id }}",
        es_conn_id="{{ params.es_conn_id }}",
        secrets="{{ params.secrets }}",
        execution_timeout=timedelta(minutes=5),
    ).expand(member=members())
    done = reconcile_run.override(task_id="reconcile")(snap)
    snap >> consume >> done
