"""logpipe's entry in Airflow's plugin manager: it registers nothing (Airflow 2
and 3 take no operators from plugins; DAGs import them from
`logpipe_airflow.operators`). It names logpipe in `airflow plugins` and the
UI's plugin list, so an operator can see that plugins.zip was loaded, and it
is the file that puts `logpipe_airflow/` beside it on MWAA's plugins path."""

from airflow.plugins_manager import AirflowPlugin


class LogpipePlugin(AirflowPlugin):
    name = "logpipe"
