"""Registers logpipe's operators with Airflow's plugin manager, so they show
in the UI's plugin list; DAGs import them from `logpipe_airflow.operators`."""

from airflow.plugins_manager import AirflowPlugin


class LogpipePlugin(AirflowPlugin):
    name = "logpipe"
