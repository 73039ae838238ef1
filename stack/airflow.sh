#!/usr/bin/env bash
# airflow.sh: the `airflow` command of the local Airflow, with its
# configuration: `stack/airflow.sh dags list`, `stack/airflow.sh dags test
# log_generation_pipeline`, `stack/airflow.sh --python -m pytest tests/airflow`.
# stack.sh starts the servers through it, and the
# tests run `airflow dags test` through it, so there is one configuration.
#
# Local choices (docs/stack.md): SQLite metadata DB and LocalExecutor (one
# machine), the simple auth manager with every user an admin (nothing listens
# beyond 127.0.0.1), the repo's airflow/dags and airflow/plugins folders as
# MWAA would have them, and the logpipe binary of this clone's build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK_DIR=${LOGPIPE_STACK_DIR:-$ROOT/.stack}
export AIRFLOW_HOME=$STACK_DIR/airflow
AIRFLOW_PORT=${LOGPIPE_AIRFLOW_PORT:-8080}
mkdir -p "$AIRFLOW_HOME"

# Shared by the api-server, which signs task tokens, and the workers, which
# present them: generated once per install, never in the repo.
if [ ! -s "$AIRFLOW_HOME/jwt_secret" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 >"$AIRFLOW_HOME/jwt_secret")
fi

export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/airflow/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/airflow/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=8
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$AIRFLOW_PORT/execution/
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$AIRFLOW_PORT
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$AIRFLOW_PORT
export AIRFLOW__API__WORKERS=1
export AIRFLOW__API_AUTH__JWT_SECRET
AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$AIRFLOW_HOME/jwt_secret")
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__LOGGING__BASE_LOG_FOLDER=$AIRFLOW_HOME/logs
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
# The binary the operators run (Variable logpipe_binary; on MWAA it is found
# in the plugins folder instead).
export AIRFLOW_VAR_LOGPIPE_BINARY=${LOGPIPE_BIN:-$ROOT/build/logpipe}
# Connections and variables are looked up in the local Secrets Manager first
# (the Amazon provider's SecretsManagerBackend, as MWAA is configured with
# secrets.backend), then in the metadata DB. AWS credentials: the stack's
# profile, through the standard variables, which the tasks (and logpipe)
# inherit as MWAA tasks inherit the execution role.
if [ -f "$STACK_DIR/aws/credentials" ]; then
  export AWS_SHARED_CREDENTIALS_FILE=$STACK_DIR/aws/credentials AWS_CONFIG_FILE=$STACK_DIR/aws/config
  export AWS_PROFILE=logpipe-local AWS_ENDPOINT_URL=http://127.0.0.1:5000
  export AIRFLOW__SECRETS__BACKEND=airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend
  export AIRFLOW__SECRETS__BACKEND_KWARGS='{"connections_prefix": "airflow/connections", "variables_prefix": null, "config_prefix": null, "profile_name": "logpipe-local", "region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:5000"}'
fi
# `airflow.sh --python ...` runs the venv's Python in this configuration
# (the Airflow tests: make test-airflow).
if [ "${1:-}" = --python ]; then
  shift
  exec "$ROOT/.venv-airflow/bin/python" "$@"
fi
exec "$ROOT/.venv-airflow/bin/airflow" "$@"
