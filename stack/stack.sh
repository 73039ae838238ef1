#!/usr/bin/env bash
# stack.sh: the local stack logpipe is developed and tested against, made of
# the real servers: a single-node Apache Kafka broker in KRaft mode and a
# single-node Elasticsearch, both on 127.0.0.1, a local Apache Airflow
# (api-server, scheduler and dag-processor) that runs the repo's DAGs, and a
# local AWS (Secrets Manager, S3: moto in server mode, signatures checked).
# The commands are in USAGE below (`stack.sh help` prints it).
#
# Each server is one script beside this one that owns its ports, readiness
# probe, install, configuration, start, stop, status line and log paths:
# kafka.sh, elasticsearch.sh, aws.sh, airflow.sh (cluster.sh: the
# three-node clusters). Their configuration files are templates in a folder
# of the same name (kafka/, elasticsearch/, aws/), filled in by `render`.
# This file holds what they share (paths, logging, waiting, stopping by pid
# file, the test CA, nginx) and only dispatches the commands to them.
#
# There is no Docker engine and no download site here, so Kafka and
# Elasticsearch come from Maven Central through Maven itself, Airflow and
# moto from PyPI (pinned, installed by deps.sh). `up` reuses servers that
# already answer, so tests can call it every time and a running demo is left
# alone. Tests source this file to call its functions: sourced, it defines
# them and runs nothing. docs/stack.md has the details.
set -euo pipefail

USAGE="usage: stack.sh COMMAND
  up                  install what is missing (cached), start what is not running, wait until ready
  up kafka-scram      the Kafka 3.9 broker with a SCRAM-SHA-512 listener (on demand)
  up kafka-acl        a Kafka broker that enforces ACLs (StandardAuthorizer; on demand)
  down                stop what this script started
  stop SERVER         stop one server (fault tests); \`up\` starts it again
  status              show what runs where
  logs SERVER [LINES] the last lines of a server's log (default 50)
  cluster up|down|status|stop NODE   3 Kafka brokers + 3 ES nodes (stack/cluster.sh)
SERVER: kafka, kafka-scram, kafka-acl, es, es-secure, aws, airflow"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${LOGPIPE_STACK_DIR:-$ROOT/.stack}
TLS_DIR=$STACK_DIR/tls
JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
READY_TIMEOUT=${LOGPIPE_STACK_TIMEOUT:-180}
# The servers, in the order `up` starts them and `status` shows them.
SERVERS="kafka kafka-scram kafka-acl es es-secure aws airflow"

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
usage() { printf '%s\n' "$USAGE" >&2; exit "${1:-2}"; }

# render TEMPLATE: the template with each @NAME@ replaced by the value of
# shell variable NAME (an unset one is an error, by set -u). The callers set
# the variables, as locals, just before: one template serves every node.
# Left to right, a value is never read again: an @ or & in it stays as it is.
render() {
  local line out name
  while IFS= read -r line || [ -n "$line" ]; do
    out=
    while [[ $line =~ @([A-Z][A-Z0-9_]*)@ ]]; do
      name=${BASH_REMATCH[1]}
      out+=${line%%"@$name@"*}${!name}
      line=${line#*"@$name@"}
    done
    printf '%s\n' "$out$line"
  done <"$1"
}

# write_private FILE: stdin into FILE, mode 0600 from its creation (a new
# file from mktemp, renamed over the old one: an existing file keeps its
# mode when rewritten, so a secret is never written into a readable one; a
# name of its own, so concurrent callers never share a half-written file).
write_private() {
  local tmp
  tmp=$(umask 077; mktemp "$1.XXXXXX") && cat >"$tmp" && mv -f "$tmp" "$1"
}

# wait_for NAME CHECK LOGFILE PIDFILE: polls CHECK until it succeeds, the
# process dies, or READY_TIMEOUT passes; on failure names the log to read.
wait_for() {
  local name=$1 check=$2 logfile=$3 pidfile=$4 start=$SECONDS
  until $check; do
    if ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      log "$name exited during start-up; last lines of $logfile:"
      tail -n 25 "$logfile" >&2 || true
      die "$name did not start: read $logfile"
    fi
    if ((SECONDS - start > READY_TIMEOUT)); then
      log "$name not ready after ${READY_TIMEOUT}s; last lines of $logfile:"
      tail -n 25 "$logfile" >&2 || true
      die "$name did not become ready: read $logfile"
    fi
    sleep 1
  done
  log "$name ready on 127.0.0.1 after $((SECONDS - start))s"
}

# stop_pidfile NAME PIDFILE: SIGTERM to the process group the pid file names
# (every server is started with setsid), SIGKILL after 30 s.
stop_pidfile() {
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# A test CA and one server certificate for 127.0.0.1, made once: the secured
# listeners (Kafka SASL_SSL, the secured Elasticsearch, the nginx fronts)
# present it and the tests trust the CA. Keys and passwords stay under
# .stack/tls (mode 700), never in the repo.
make_tls() {
  [ -f "$TLS_DIR/.complete" ] && return
  log "creating a test CA and certificates in $TLS_DIR"
  rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=logpipe local test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile san.ext -out server.pem 2>/dev/null
    openssl rand -hex 16 >keystore.pass
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name server \
      -passout file:keystore.pass -out server.p12
    openssl rand -hex 16 >kafka-plain.pass
    openssl rand -hex 16 >kafka-scram.pass
    chmod 644 ca.pem
  ) || die "creating the test certificates failed (openssl)"
  touch "$TLS_DIR/.complete"
}

# new_password NAME: a random password in $TLS_DIR/NAME.pass, made once.
new_password() {
  [ -f "$TLS_DIR/$1.pass" ] || (umask 077; openssl rand -hex 16 >"$TLS_DIR/$1.pass")
}

# run_nginx NAME DIR CHECK SERVER-TEMPLATE: nginx in DIR (pid, logs, temp
# folders there) serving TLS with the test certificate, its `server` block
# rendered from SERVER-TEMPLATE (the API-key gateway of the secured
# Elasticsearch, the TLS front of the local AWS); waits for CHECK. The
# master (root) reads keys and config, the workers (nobody) only buffer
# request bodies in DIR/tmp.
# shellcheck disable=SC2034 # the template's variables, read by render
run_nginx() {
  local NGINX_ROLE=$1 NGINX_DIR=$2 NGINX_SERVER
  command -v nginx >/dev/null || die "nginx is missing: run stack/deps.sh"
  stop_pidfile "$1" "$NGINX_DIR/launcher.pid"
  mkdir -p "$NGINX_DIR/tmp" && chmod 711 "$NGINX_DIR" && chown nobody:nogroup "$NGINX_DIR/tmp" &&
    chmod 700 "$NGINX_DIR/tmp"
  NGINX_SERVER=$(render "$4")
  render "$ROOT/stack/nginx.conf" | write_private "$NGINX_DIR/nginx.conf"
  log "starting $1 (nginx; log: $NGINX_DIR/error.log)"
  setsid nohup nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" >"$NGINX_DIR/stdout.log" 2>&1 </dev/null &
  echo $! >"$NGINX_DIR/launcher.pid"
  wait_for "$1" "$3" "$NGINX_DIR/error.log" "$NGINX_DIR/launcher.pid"
}

# The servers: each defines start_/stop_/status_/logs_<name> for the
# dispatch below (a `-` in a server's name is `_` in its functions').
for server in kafka elasticsearch aws airflow; do
  # shellcheck source=/dev/null
  source "$ROOT/stack/$server.sh"
done
unset server

cmd_up() {
  command -v kcat >/dev/null || die "kcat is missing: run stack/deps.sh"
  mkdir -p "$STACK_DIR"
  start_kafka
  seed_kafka_users
  start_es
  start_es_secure
  install_logs_templates
  start_aws
  start_aws_tls
  seed_secure_secret
  start_airflow
}

cmd_down() {
  stop_one kafka-acl
  stop_one kafka-scram
  stop_one airflow
  stop_one aws
  stop_one es-secure
  stop_one es
  stop_one kafka
}

# A server's status line; exit 1 when a server `up` starts is down (the
# on-demand ones, started by the tests that need them, may be down).
cmd_status() {
  local rc=0 server
  for server in $SERVERS; do
    case $server in
      kafka-scram|kafka-acl) "status_${server//-/_}" || true ;;
      *) "status_${server//-/_}" || rc=1 ;;
    esac
  done
  return $rc
}

# server_action ACTION SERVER [ARGS]: runs ACTION_SERVER (usage if no such server).
server_action() {
  case " $SERVERS " in *" ${2:-} "*) ;; *) usage 1 ;; esac
  "${1}_${2//-/_}" "${@:3}"
}
stop_one() { server_action stop "${1:-}"; }

# Sourced (tests call the functions above): define them, run nothing.
(return 0 2>/dev/null) && return 0

# One of up/down/stop at a time: two at once (tests of two checkouts sharing
# .stack, a test restarting Kafka while another brings the stack up) would
# start a server twice and leave a pid file naming the one that failed.
# flock -o: the servers started must not inherit (and so hold) the lock.
case ${1:-} in
  up|down|stop)
    if [ -z "${LOGPIPE_STACK_LOCKED:-}" ]; then
      mkdir -p "$STACK_DIR"
      LOGPIPE_STACK_LOCKED=1 exec flock -o "$STACK_DIR/stack.lock" bash "$0" "$@"
    fi ;;
esac

case ${1:-} in
  up) case ${2:-} in
        kafka-scram) start_kafka_scram ;;
        kafka-acl) start_kafka_acl ;;
        *) cmd_up ;;
      esac ;;
  down) cmd_down ;;
  stop) stop_one "${2:-}" ;;
  status) cmd_status ;;
  logs) server_action logs "${2:-}" "${3:-50}" ;;
  # The three-broker, three-node cluster for the failover tests (stack/cluster.sh).
  cluster) # shellcheck source=stack/cluster.sh
           source "$ROOT/stack/cluster.sh"; cluster_main "${@:2}" ;;
  help|-h|--help) usage 0 ;;
  *) usage 2 ;;
esac
