"""log_generation_pipeline: synthetic access logs into Kafka, every 5 minutes.

The producer workflow: one task, `logpipe produce`, which generates
15,000 access-log lines per run (count, format and rate are DAG params) and
publishes them with an idempotent producer. Nothing here runs at parse time
but the DAG definition: the connection is read when the task runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from logpipe_airflow import params as where
from logpipe_airflow.compat import DAG, Param
from logpipe_airflow.operators import LogpipeProduceOperator

DOC = """
### log_generation_pipeline
Generates synthetic web-server access logs with `logpipe produce` and
publishes them to the Kafka topic `params.topic` (connection `params.kafka_conn_id`,
`kafka_default` unless changed).

* **count**: lines per run (15,000)
* **log_format**: `combined_zoneless` (combined's fields with a zone-less time such as `[Jan 21 2026, 22:23:40]`; `seed` is accepted for it), `combined` (Apache/nginx), `common` or `vhost_combined` (Apache's `%v:%p` before the client)
* **rate**: messages per second, 0 = as fast as possible
* **malformed_ratio**: share of deliberately broken lines (exercises the dead-letter path)
* **kafka_conn_id**: the Airflow connection of the Kafka cluster
* **secrets**: `aws-sm://MWAA_Secrets` to take Kafka's settings from one JSON secret
  (keys as in docs/secrets.md) instead, read on the worker with its execution role

`topic` must be `logs` or start with `logs.`/`logs-`/`logs_`, `kafka_conn_id` with
`kafka_` (logpipe_airflow/params.py): a trigger cannot point a run elsewhere.

The task's XCom is logpipe's summary: `sent`, `delivered`, `failed`, `msgs_per_s`.
"""

with DAG(
    dag_id="log_generation_pipeline",
    description="Synthetic access logs into Kafka through logpipe produce",
    doc_md=DOC,
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["logpipe", "kafka", "producer"],
    default_args={"owner": "logpipe", "retries": 1, "retry_delay": timedelta(seconds=5)},
    params={
        "topic": where.topic(),
        "count": Param(15000, type="integer", minimum=1),
        "log_format": Param("combined_zoneless",
                            enum=["combined_zoneless", "seed", "combined", "common", "vhost_combined"]),
        "rate": Param(0, type="integer", minimum=0),
        "malformed_ratio": Param(0.0, type="number", minimum=0, maximum=1),
        "kafka_conn_id": where.kafka_conn_id(),
        "secrets": where.secrets("the connection"),
    },
) as dag:
    LogpipeProduceOperator(
        task_id="produce",
        topic="{{ params.topic }}",
        count="{{ params.count }}",
        log_format="{{ params.log_format }}",
        rate="{{ params.rate }}",
        malformed_ratio="{{ params.malformed_ratio }}",
        kafka_conn_id="{{ params.kafka_conn_id }}",
        secrets="{{ params.secrets }}",
        execution_timeout=timedelta(minutes=4),
    )
