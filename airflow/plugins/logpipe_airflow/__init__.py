"""logpipe's Airflow integration: operators that run the logpipe binary, and
the reconcile check of the consumer DAG.

Kept as a plain package in the plugins folder (MWAA unpacks plugins.zip to
/usr/local/airflow/plugins, which is on sys.path), imported by the DAGs as
`logpipe_airflow.operators`. It runs on Airflow 2.10+ and 3.x: everything
that moved between the two lines is imported in `compat`.
"""
