"""logpipe_worker_check: once, on first deploy, what the workers are.

The bundle's logpipe is built for MWAA's documented worker platform (Amazon
Linux 2023: x86_64, glibc 2.34; docs/deploy.md). This one-task DAG runs
once (`@once`, when first unpaused) and logs `uname -m` and `ldd --version`
from a real worker, then runs the logpipe the operators will run. Its XCom
is what it found; it fails, naming the mismatch, when the binary cannot run
there. Trigger it again after changing the environment's Airflow version.
"""

from __future__ import annotations

import pendulum
from logpipe_airflow.compat import DAG
from logpipe_airflow.platform_check import check_worker

try:  # Airflow 3.x
    from airflow.sdk import task
except ImportError:  # Airflow 2.x
    from airflow.decorators import task

with DAG(
    dag_id="logpipe_worker_check",
    description="Logs uname -m and ldd --version on a worker and runs the bundled logpipe",
    doc_md=__doc__,
    schedule="@once",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["logpipe", "deploy"],
    default_args={"owner": "logpipe", "retries": 0},
) as dag:

    @task(task_id="worker_platform")
    def worker_platform() -> dict:
        return check_worker()

    worker_platform()
