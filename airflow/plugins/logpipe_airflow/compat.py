"""The one place that knows where Airflow 2.x and 3.x keep things.

Airflow 3 moved the authoring API to `airflow.sdk` (DAG, BaseOperator,
Variable, Connection, mask_secret); Airflow 2.10/2.11, which MWAA still
runs, has them in `airflow.models` and `airflow.utils`. Everything else in
this package imports from here, so one file changes when a line is dropped.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3.x
    from airflow.sdk import DAG, BaseOperator, Connection, Param, Variable
    from airflow.sdk.log import mask_secret

    AIRFLOW_3 = True
except ImportError:  # Airflow 2.10 / 2.11
    from airflow.hooks.base import BaseHook
    from airflow.models import DAG, BaseOperator, Param, Variable  # type: ignore[assignment]
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

    Connection = None  # type: ignore[assignment,misc]
    AIRFLOW_3 = False

from airflow.exceptions import AirflowException, AirflowFailException

__all__ = [
    "AIRFLOW_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "BaseOperator",
    "Param",
    "get_connection",
    "get_variable",
    "mask_secret",
]


def get_connection(conn_id: str) -> Any:
    """The Connection `conn_id`, from wherever Airflow is configured to look
    (metadata DB, environment, a secrets backend such as Secrets Manager)."""
    if AIRFLOW_3:
        return Connection.get(conn_id)
    return BaseHook.get_connection(conn_id)  # noqa: AIR321  (the Airflow 2 branch, by design)


def get_variable(key: str) -> str | None:
    """An Airflow Variable's value, or None when it is not set."""
    if AIRFLOW_3:
        return Variable.get(key, default=None)
    return Variable.get(key, default_var=None)
