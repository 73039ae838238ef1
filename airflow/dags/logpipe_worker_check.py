"""logpipe_worker_check: once, on first deploy, does logpipe work here?

The bundle's logpipe is built for MWAA's documented worker platform (Amazon
Linux 2023: x86_64, glibc 2.34; docs/deploy.md) and carries its own libcurl,
libssl and librdkafka. This DAG runs once (`@once`, when first unpaused) and
proves the platform before the pipelines rely on it:

1. **worker_platform**: logs `uname -m` and `ldd --version` from a real worker
   and runs the logpipe the operators will run;
2. **first_run**: with the settings the pipelines use (`params.secrets`, or
   the connections `params.kafka_conn_id` and `params.es_conn_id`), logpipe
   itself reads the secret from Secrets Manager and shakes hands with Kafka and
   Elasticsearch (TLS, SASL, credentials: `logpipe check`), then 20 lines go
   round trip through a scratch topic and index (`params.scratch_prefix`-…),
   which are removed afterwards. It prints one verdict table and fails naming
   every check that failed and why.

Trigger it again after changing the environment, its Airflow version, the
secret or the connections (with `{"secrets": "aws-sm://MWAA_Secrets"}` to
check that one JSON secret).
"""

from __future__ import annotations

from typing import Any

import pendulum
from logpipe_airflow.compat import DAG, Param
from logpipe_airflow.platform_check import check_worker

try:  # Airflow 3.x
    from airflow.sdk import task
except ImportError:  # Airflow 2.x
    from airflow.decorators import task

with DAG(
    dag_id="logpipe_worker_check",
    description="Proves a worker runs logpipe and reaches Secrets Manager, Kafka and Elasticsearch",
    doc_md=__doc__,
    schedule="@once",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["logpipe", "deploy"],
    default_args={"owner": "logpipe", "retries": 0},
    params={
        "kafka_conn_id": Param("kafka_default", type="string"),
        "es_conn_id": Param("elasticsearch_default", type="string"),
        "secrets": Param("", type="string",
                         description="aws-sm://SECRET_ID: one JSON secret (docs/secrets.md's keys) replacing both connections"),
        "scratch_prefix": Param("logpipe-check", type="string", minLength=1,
                                description="the round trip's topic, group and index are <prefix>-<id>"),
    },
) as dag:

    @task(task_id="worker_platform")
    def worker_platform() -> dict:
        return check_worker()

    @task(task_id="first_run")
    def first_run(platform: dict, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from logpipe_airflow.first_run import check_first_run

        assert params is not None
        return check_first_run(platform, params["kafka_conn_id"], params["es_conn_id"], params["secrets"],
                               params["scratch_prefix"])

    first_run(worker_platform())
