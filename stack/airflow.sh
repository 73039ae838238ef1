#!/usr/bin/env bash
# airflow.sh: the local Airflow. Run, it is the `airflow` command with the
# stack's configuration: `stack/airflow.sh dags list`, `stack/airflow.sh dags
# test log_generation_pipeline`, `stack/airflow.sh --python -m pytest
# tests/airflow`. Sourced by stack.sh, it is the stack's Airflow server
# (api-server, scheduler and dag-processor on 127.0.0.1:8080): its probe,
# start, stop, status line and logs. The servers run through the command
# too, as the tests' `airflow dags test` does, so there is one configuration.
#
# Local choices (docs/stack.md): SQLite metadata DB and LocalExecutor (one
# machine), the simple auth manager with every user an admin (nothing listens
# beyond 127.0.0.1), the repo's airflow/dags and airflow/plugins folders as
# MWAA would have them, and the logpipe binary of this clone's build.
# Airflow comes from PyPI, pinned (airflow/requirements-local.txt, installed
# by deps.sh into .venv-airflow).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${LOGPIPE_STACK_DIR:-$ROOT/.stack}
AIRFLOW_HOME=$STACK_DIR/airflow
AIRFLOW_PORT=${LOGPIPE_AIRFLOW_PORT:-8080}
AIRFLOW_CMD=$ROOT/stack/airflow.sh
AIRFLOW_PARTS="api-server scheduler dag-processor"

airflow_ready() {
  curl -fsS -m 3 "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null |
    python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(not all(h[k]["status"] == "healthy" for k in ("metadatabase", "scheduler", "dag_processor")))' 2>/dev/null
}

# Every part's process alive: a busy machine can make the health check miss,
# and restarting then would kill the DAG runs in flight (and start the
# scheduler's start-up over, which the next check misses again).
airflow_running() {
  local part
  for part in $AIRFLOW_PARTS; do
    kill -0 "$(cat "$AIRFLOW_HOME/$part.pid" 2>/dev/null)" 2>/dev/null || return 1
  done
}

airflow_version() { "$ROOT/.venv-airflow/bin/python" -c 'import airflow; print(airflow.__version__)'; }

# The connections the DAGs use, pointing at the local servers (the secrets
# work serves them from Secrets Manager instead). Added once: an operator's
# edit in the UI survives the next `up`.
seed_airflow_connections() {
  "$AIRFLOW_CMD" connections get kafka_default >/dev/null 2>&1 ||
    "$AIRFLOW_CMD" connections add kafka_default --conn-json \
      '{"conn_type":"kafka","description":"local Kafka (stack/stack.sh)","extra":{"bootstrap.servers":"127.0.0.1:'"$KAFKA_PORT"'"}}' >/dev/null
  "$AIRFLOW_CMD" connections get elasticsearch_default >/dev/null 2>&1 ||
    "$AIRFLOW_CMD" connections add elasticsearch_default --conn-json \
      '{"conn_type":"elasticsearch","description":"local Elasticsearch (stack/stack.sh)","host":"127.0.0.1","port":'"$ES_PORT"',"schema":"http"}' >/dev/null
}

start_airflow() {
  if airflow_ready; then
    log "Airflow already answers on 127.0.0.1:$AIRFLOW_PORT: reusing it"
    return
  fi
  if airflow_running; then
    log "Airflow's processes run but its health check missed: waiting for it rather than restarting it"
    wait_for Airflow airflow_ready "$AIRFLOW_HOME/logs/api-server.log" "$AIRFLOW_HOME/api-server.pid"
    return
  fi
  [ -x "$ROOT/.venv-airflow/bin/airflow" ] || die "Airflow is not installed: run stack/deps.sh"
  mkdir -p "$AIRFLOW_HOME/logs"
  log "preparing Airflow's metadata DB ($AIRFLOW_HOME/airflow.db) and connections"
  "$AIRFLOW_CMD" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || die "airflow db migrate failed: read $AIRFLOW_HOME/db-migrate.log"
  seed_airflow_connections
  local part
  for part in $AIRFLOW_PARTS; do
    stop_pidfile "Airflow $part" "$AIRFLOW_HOME/$part.pid"
    setsid nohup "$AIRFLOW_CMD" "$part" >"$AIRFLOW_HOME/logs/$part.log" 2>&1 </dev/null &
    echo $! >"$AIRFLOW_HOME/$part.pid"
  done
  log "starting Airflow $(airflow_version 2>/dev/null) (logs: $AIRFLOW_HOME/logs/)"
  wait_for Airflow airflow_ready "$AIRFLOW_HOME/logs/api-server.log" "$AIRFLOW_HOME/api-server.pid"
}

stop_airflow() {
  local part
  for part in dag-processor scheduler api-server; do
    stop_pidfile "Airflow $part" "$AIRFLOW_HOME/$part.pid"
  done
}

logs_airflow() { tail -n "$1" "$AIRFLOW_HOME"/logs/{api-server,scheduler,dag-processor}.log; }

status_airflow() {
  if airflow_ready; then
    echo "airflow        up    http://127.0.0.1:$AIRFLOW_PORT  version $(airflow_version)  home $AIRFLOW_HOME"
  else
    echo "airflow        down  http://127.0.0.1:$AIRFLOW_PORT"; return 1
  fi
}

# Sourced by stack.sh: the functions above, nothing run.
(return 0 2>/dev/null) && return 0

export AIRFLOW_HOME
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
