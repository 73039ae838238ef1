#!/usr/bin/env bash
# stack.sh: the local stack logpipe is developed and tested against, made of
# the real servers: a single-node Apache Kafka broker in KRaft mode and a
# single-node Elasticsearch, both on 127.0.0.1, a local Apache Airflow
# (api-server, scheduler and dag-processor) that runs the repo's DAGs, and a
# local AWS (Secrets Manager, S3: moto in server mode, signatures checked).
#
#   stack.sh up       install what is missing (cached), start what is not running, wait until ready
#   stack.sh up kafka-scram   the Kafka 3.9 broker with a SCRAM-SHA-512 listener (on demand)
#   stack.sh up kafka-acl     a Kafka broker that enforces ACLs (StandardAuthorizer; on demand)
#   stack.sh down     stop what this script started
#   stack.sh stop kafka|es|airflow|aws   stop one server (fault tests); `up` starts it again
#   stack.sh status   show what runs where
#   stack.sh logs kafka|es|airflow   the last lines of a server's log
#   stack.sh cluster up|down|status   3 Kafka brokers + 3 ES nodes (stack/cluster.sh)
#
# There is no Docker engine and no download site here, so both come from
# Maven Central through Maven itself: the Kafka broker jars and their runtime
# dependencies (stack/kafka/pom.xml), and Elasticsearch's integ-test-zip
# distribution (it bundles no JDK: the system Java 17 runs it). Elasticsearch
# refuses to run as root, so it runs as an unprivileged user this script
# creates. `up` reuses servers that already answer, so tests can call it
# every time and a running demo is left alone. Airflow comes from PyPI, pinned
# (airflow/requirements-local.txt, installed by deps.sh into .venv-airflow),
# configured by stack/airflow.sh. docs/stack.md has the details.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${LOGPIPE_STACK_DIR:-$ROOT/.stack}
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/stack/kafka/pom.xml")
ES_VERSION=${LOGPIPE_ES_VERSION:-8.19.21}
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_SASL_PORT=9094
# A Kafka 3.9 broker whose listener logpipe can log in to with SCRAM
# (start_kafka_scram; Debian 12's librdkafka cannot, on Kafka 4.x).
KAFKA_SCRAM_VERSION=3.9.1
KAFKA_SCRAM_PORT=9096
KAFKA_SCRAM_CONTROLLER_PORT=9097
KAFKA_SCRAM_INTERNAL_PORT=9098
# A broker that enforces ACLs (start_kafka_acl): SASL PLAIN user logpipe-acl
# on 9110 has exactly the ACLs a test grants it; 9112 is its admin listener.
KAFKA_ACL_PORT=9110
KAFKA_ACL_CONTROLLER_PORT=9111
KAFKA_ACL_ADMIN_PORT=9112
TLS_DIR=$STACK_DIR/tls
ES_PORT=9200
ES_SECURE_PORT=9201
ES_GATEWAY_PORT=9202
AIRFLOW_PORT=${LOGPIPE_AIRFLOW_PORT:-8080}
AWS_PORT=5000
AWS_TLS_PORT=5443
AWS_HOME=$STACK_DIR/aws
AIRFLOW_HOME=$STACK_DIR/airflow
AIRFLOW=$ROOT/stack/airflow.sh
ES_USER=logpipe
JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
READY_TIMEOUT=${LOGPIPE_STACK_TIMEOUT:-180}

KAFKA_HOME=$STACK_DIR/kafka
KAFKA_SCRAM_HOME=$STACK_DIR/kafka-scram
KAFKA_ACL_HOME=$STACK_DIR/kafka-acl
ES_STACK_DIR=$STACK_DIR
ES_HOME=$ES_STACK_DIR/elasticsearch-$ES_VERSION
ES_DATA=$ES_STACK_DIR/es-data

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

kafka_ready() { kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 3 >/dev/null 2>&1; }
# write_private FILE: stdin into FILE, mode 0600 from its creation (a new
# file from mktemp, renamed over the old one: an existing file keeps its
# mode when rewritten, so a secret is never written into a readable one; a
# name of its own, so concurrent callers never share a half-written file).
write_private() {
  local tmp
  tmp=$(umask 077; mktemp "$1.XXXXXX") && cat >"$tmp" && mv -f "$tmp" "$1"
}

# kcat_login NAME USER MECHANISM [PROTOCOL]: a kcat config file (-F) that
# logs in to a SASL listener (SASL_SSL unless PROTOCOL says otherwise) as USER
# with the password in $TLS_DIR/NAME.pass; its path on stdout. The password
# stays off kcat's argv, which `ps` shows.
kcat_login() {
  local protocol=${4:-SASL_SSL}
  {
    printf 'security.protocol=%s\nsasl.mechanisms=%s\nsasl.username=%s\nsasl.password=%s\n' \
      "$protocol" "$3" "$2" "$(cat "$TLS_DIR/$1.pass")"
    if [ "$protocol" = SASL_SSL ]; then printf 'ssl.ca.location=%s\n' "$TLS_DIR/ca.pem"; fi
  } | write_private "$TLS_DIR/$1.kcat"
  echo "$TLS_DIR/$1.kcat"
}
kafka_sasl_ready() {
  [ -f "$TLS_DIR/kafka-plain.pass" ] &&
    kcat -F "$(kcat_login kafka-plain logpipe PLAIN)" -L -b "127.0.0.1:$KAFKA_SASL_PORT" -m 5 >/dev/null 2>&1
}
kafka_scram_ready() {
  [ -f "$TLS_DIR/kafka-scram.pass" ] &&
    kcat -F "$(kcat_login kafka-scram logpipe-scram SCRAM-SHA-512)" -L -b "127.0.0.1:$KAFKA_SCRAM_PORT" -m 5 \
      >/dev/null 2>&1
}
kafka_acl_ready() {
  [ -f "$TLS_DIR/kafka-acl.pass" ] &&
    kcat -F "$(kcat_login kafka-acl logpipe-acl PLAIN SASL_PLAINTEXT)" -L -b "127.0.0.1:$KAFKA_ACL_PORT" -m 5 \
      >/dev/null 2>&1 &&
    kcat -L -b "127.0.0.1:$KAFKA_ACL_ADMIN_PORT" -m 5 >/dev/null 2>&1
}
es_ready() {
  curl -fsS -m 3 "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}
# As root, with the stack's test credentials passed on stdin (never argv).
es_secure_curl() {
  printf 'user = "%s"\n' "$1" | curl -K - -fsS -m 10 --cacert "$TLS_DIR/ca.pem" "${@:2}"
}
es_secure_ready() {
  [ -f "$TLS_DIR/es-elastic.pass" ] &&
    es_secure_curl "elastic:$(cat "$TLS_DIR/es-elastic.pass")" \
      "https://127.0.0.1:$ES_SECURE_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}
airflow_ready() {
  curl -fsS -m 3 "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null |
    python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(not all(h[k]["status"] == "healthy" for k in ("metadatabase", "scheduler", "dag_processor")))' 2>/dev/null
}

# Ready means seeded too: the key in $AWS_HOME/credentials reads the secret.
aws_ready() {
  [ -f "$AWS_HOME/credentials" ] &&
    AWS_SHARED_CREDENTIALS_FILE="$AWS_HOME/credentials" AWS_CONFIG_FILE="$AWS_HOME/config" \
    AWS_PROFILE=logpipe-local AWS_ENDPOINT_URL="http://127.0.0.1:$AWS_PORT" \
    "$ROOT/.venv/bin/python" -c 'import boto3; boto3.client("secretsmanager").get_secret_value(SecretId="logpipe/local")' \
    >/dev/null 2>&1
}
aws_tls_ready() { curl -fsS -m 3 --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$AWS_TLS_PORT/moto-api/" >/dev/null 2>&1; }
aws_answers() { curl -fsS -m 3 "http://127.0.0.1:$AWS_PORT/moto-api/" >/dev/null 2>&1; }

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

# install_kafka [HOME VERSION]: the broker jars of VERSION into HOME/libs.
install_kafka() {
  local home=${1:-$KAFKA_HOME} version=${2:-$KAFKA_VERSION}
  [ -f "$home/libs/.complete-$version" ] && return
  log "installing Kafka $version broker jars from Maven Central"
  rm -rf "$home/libs"
  mvn -q -B -f "$ROOT/stack/kafka/pom.xml" dependency:copy-dependencies -Dkafka.version="$version" \
      -DincludeScope=runtime -DoutputDirectory="$home/libs" >&2 ||
    die "resolving Kafka $version from Maven Central failed (mvn dependency:copy-dependencies)"
  touch "$home/libs/.complete-$version"
}

kafka_java() {
  "$JAVA_HOME/bin/java" -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/stack/kafka/log4j2.yaml" \
    -cp "$KAFKA_HOME/libs/*" "$@"
}

# A test CA and one server certificate for 127.0.0.1, made once: the secured
# listeners (Kafka SASL_SSL) present it and the tests trust the CA. Keys and
# passwords stay under .stack/tls (mode 700), never in the repo.
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

# SCRAM credentials live in the cluster metadata: upserted after every start
# (idempotent) with Kafka's own ConfigCommand through the plaintext listener.
# The password reaches it in a java @argfile, not argv. (The same upsert
# through confluent-kafka's Admin API made credentials the broker refused,
# and ConfigCommand's --add-config-file does not take the SCRAM syntax.)
seed_kafka_users() {
  [ -f "$TLS_DIR/kafka-scram.pass" ] || (umask 077; openssl rand -hex 16 >"$TLS_DIR/kafka-scram.pass")
  # Kept in the metadata log across restarts: once per data folder and
  # password (a JVM at every `up` slowed the broker-restart fault test).
  local marker
  marker=$KAFKA_HOME/data/.scram-$(sha256sum "$TLS_DIR/kafka-scram.pass" | cut -c1-16)
  [ -f "$marker" ] && return
  # The launcher expands @files only up to the main class: it goes in the file.
  (umask 077; printf '%s\n' kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter \
    --entity-type users --entity-name logpipe-scram --add-config \
    "SCRAM-SHA-512=[iterations=8192,password=$(cat "$TLS_DIR/kafka-scram.pass")]" >"$TLS_DIR/kafka-scram.args")
  kafka_java "@$TLS_DIR/kafka-scram.args" >"$KAFKA_HOME/scram.log" 2>&1 ||
    die "creating Kafka's SCRAM user failed: read $KAFKA_HOME/scram.log"
  rm -f "$TLS_DIR/kafka-scram.args"
  touch "$marker"
}

# What both brokers share: one KRaft node acting as broker and controller,
# its SASL_SSL listener's TLS key, and the internal topics' single-node
# replication. $1: the broker's home, $2: its controller port.
kafka_single_node_properties() {
  cat <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
controller.listener.names=CONTROLLER
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/server.p12
ssl.keystore.password=$(cat "$TLS_DIR/keystore.pass")
ssl.key.password=$(cat "$TLS_DIR/keystore.pass")
log.dirs=$1/data
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

configure_kafka() {
  mkdir -p "$KAFKA_HOME/data"
  { echo "# Written by stack/stack.sh: the stack's Kafka."
    kafka_single_node_properties "$KAFKA_HOME" "$KAFKA_CONTROLLER_PORT"
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
# The secured listener, as a managed Kafka offers it: TLS with the test CA's
# certificate, SASL PLAIN (user logpipe) and SCRAM-SHA-512 (user logpipe-scram).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_logpipe="$(cat "$TLS_DIR/kafka-plain.pass")";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
num.partitions=3
offsets.topic.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
message.max.bytes=16777216
log.retention.hours=24
EOF
  } | write_private "$KAFKA_HOME/server.properties"
  if [ ! -f "$KAFKA_HOME/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$KAFKA_HOME/server.properties" >"$KAFKA_HOME/format.log" 2>&1 ||
      die "formatting Kafka storage failed: read $KAFKA_HOME/format.log"
  fi
}

start_kafka() {
  if kafka_ready; then
    log "Kafka already answers on 127.0.0.1:$KAFKA_PORT: reusing it"
    return
  fi
  install_kafka
  make_tls
  configure_kafka
  log "starting Kafka $KAFKA_VERSION (log: $KAFKA_HOME/kafka.log)"
  setsid nohup bash -c "$(declare -f kafka_java); JAVA_HOME='$JAVA_HOME' KAFKA_HOME='$KAFKA_HOME' ROOT='$ROOT' \
    kafka_java kafka.Kafka '$KAFKA_HOME/server.properties'" >"$KAFKA_HOME/kafka.log" 2>&1 </dev/null &
  echo $! >"$KAFKA_HOME/kafka.pid"
  wait_for Kafka kafka_ready "$KAFKA_HOME/kafka.log" "$KAFKA_HOME/kafka.pid"
  wait_for "Kafka's SASL_SSL listener" kafka_sasl_ready "$KAFKA_HOME/kafka.log" "$KAFKA_HOME/kafka.pid"
}

# The SCRAM-SHA-512 listener, on its own Kafka 3.9 broker. librdkafka before
# 2.6.1 (Debian 12 has 2.0.2) repeats the client nonce in the SCRAM final
# message; Kafka 4.x rejects that, 3.8.1 to 3.9.x accept it
# (confluentinc/librdkafka#4895). Started on demand (`stack.sh up
# kafka-scram`, by the tests that need it), not by `up`. The user is created
# when the storage is formatted (StorageTool --add-scram, KRaft), the
# password in a java @argfile rather than argv.
configure_kafka_scram() {
  mkdir -p "$KAFKA_SCRAM_HOME/data"
  { echo "# Written by stack/stack.sh: the SCRAM-SHA-512 broker."
    kafka_single_node_properties "$KAFKA_SCRAM_HOME" "$KAFKA_SCRAM_CONTROLLER_PORT"
    cat <<EOF
listeners=INTERNAL://127.0.0.1:$KAFKA_SCRAM_INTERNAL_PORT,CONTROLLER://127.0.0.1:$KAFKA_SCRAM_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SCRAM_PORT
advertised.listeners=INTERNAL://127.0.0.1:$KAFKA_SCRAM_INTERNAL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SCRAM_PORT
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
num.partitions=1
offsets.topic.num.partitions=3
EOF
  } | write_private "$KAFKA_SCRAM_HOME/server.properties"
  [ -f "$KAFKA_SCRAM_HOME/data/meta.properties" ] && return
  local cluster_id
  cluster_id=$(KAFKA_HOME=$KAFKA_SCRAM_HOME kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  (umask 077; printf '%s\n' kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_SCRAM_HOME/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=logpipe-scram,iterations=8192,password=$(cat "$TLS_DIR/kafka-scram.pass")]" \
    >"$KAFKA_SCRAM_HOME/format.args")
  KAFKA_HOME=$KAFKA_SCRAM_HOME kafka_java "@$KAFKA_SCRAM_HOME/format.args" >"$KAFKA_SCRAM_HOME/format.log" 2>&1 ||
    die "formatting the SCRAM broker's storage failed: read $KAFKA_SCRAM_HOME/format.log"
  rm -f "$KAFKA_SCRAM_HOME/format.args"
}

# run_on_demand_kafka NAME HOME VERSION READY CONFIGURE [JARS]: starts one of
# the brokers tests start on demand (reused when READY answers), configured
# by CONFIGURE, with VERSION's jars in JARS/libs (default HOME/libs).
run_on_demand_kafka() {
  local name=$1 home=$2 version=$3 ready=$4 configure=$5 jars=${6:-$2}
  if "$ready"; then
    log "$name already answers: reusing it"
    return
  fi
  install_kafka "$jars" "$version"
  make_tls
  "$configure"
  log "starting Kafka $version: $name (log: $home/kafka.log)"
  setsid nohup bash -c "$(declare -f kafka_java); JAVA_HOME='$JAVA_HOME' KAFKA_HOME='$jars' ROOT='$ROOT' \
    kafka_java kafka.Kafka '$home/server.properties'" >"$home/kafka.log" 2>&1 </dev/null &
  echo $! >"$home/kafka.pid"
  wait_for "$name" "$ready" "$home/kafka.log" "$home/kafka.pid"
}

start_kafka_scram() {
  run_on_demand_kafka "Kafka's SCRAM listener on 127.0.0.1:$KAFKA_SCRAM_PORT" "$KAFKA_SCRAM_HOME" \
    "$KAFKA_SCRAM_VERSION" kafka_scram_ready configure_kafka_scram
}

# The ACL broker, started on demand (`stack.sh up kafka-acl`, by
# tests/integration/test_prerequisites.py): KRaft's StandardAuthorizer with
# nothing allowed unless an ACL says so. User logpipe-acl logs in with SASL
# PLAIN on 127.0.0.1:9110 and gets exactly the ACLs a test creates; the
# plaintext admin listener on 9112 (ANONYMOUS, a super user, 127.0.0.1 only)
# is how tests create topics and ACLs. No TLS here: the ACLs are the point,
# and the SASL_SSL brokers cover TLS. Kafka 4.1, as the shared broker.
configure_kafka_acl() {
  mkdir -p "$KAFKA_ACL_HOME/data"
  [ -f "$TLS_DIR/kafka-acl.pass" ] || (umask 077; openssl rand -hex 16 >"$TLS_DIR/kafka-acl.pass")
  (umask 077
   { echo "# Written by stack/stack.sh: the broker that enforces ACLs."
     kafka_single_node_properties "$KAFKA_ACL_HOME" "$KAFKA_ACL_CONTROLLER_PORT"
     cat <<EOF
listeners=ADMIN://127.0.0.1:$KAFKA_ACL_ADMIN_PORT,CONTROLLER://127.0.0.1:$KAFKA_ACL_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_ACL_PORT
advertised.listeners=ADMIN://127.0.0.1:$KAFKA_ACL_ADMIN_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_ACL_PORT
inter.broker.listener.name=ADMIN
listener.security.protocol.map=ADMIN:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_logpipe-acl="$(cat "$TLS_DIR/kafka-acl.pass")";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false
num.partitions=1
offsets.topic.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
   } > "$KAFKA_ACL_HOME/server.properties")
  [ -f "$KAFKA_ACL_HOME/data/meta.properties" ] && return
  local cluster_id
  cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_ACL_HOME/server.properties" \
    >"$KAFKA_ACL_HOME/format.log" 2>&1 || die "formatting the ACL broker's storage failed: read $KAFKA_ACL_HOME/format.log"
}

start_kafka_acl() {
  run_on_demand_kafka "the ACL broker on 127.0.0.1:$KAFKA_ACL_PORT" "$KAFKA_ACL_HOME" "$KAFKA_VERSION" \
    kafka_acl_ready configure_kafka_acl "$KAFKA_HOME"
}

ensure_es_user() {
  id "$ES_USER" >/dev/null 2>&1 && return
  log "creating unprivileged user '$ES_USER' to run Elasticsearch (it refuses to run as root)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
}

# Elasticsearch runs as $ES_USER, who must reach its files through every
# parent folder. A clone under a private home (mode 700) is not reachable, so
# then its files go under /var/tmp instead, keyed by the clone's path.
choose_es_dir() {
  local d=$STACK_DIR
  while [ "$d" != / ]; do
    [ -e "$d" ] && ! su -s /bin/sh "$ES_USER" -c "test -x '$d'" 2>/dev/null && break
    d=$(dirname "$d")
  done
  if [ "$d" != / ]; then
    ES_STACK_DIR=/var/tmp/logpipe-stack-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
    mkdir -p "$ES_STACK_DIR"
    chmod 755 "$ES_STACK_DIR"
    log "$d is not reachable by user $ES_USER: Elasticsearch files go to $ES_STACK_DIR"
  fi
  ES_HOME=$ES_STACK_DIR/elasticsearch-$ES_VERSION
  ES_DATA=$ES_STACK_DIR/es-data
}

install_es() {
  choose_es_dir
  [ -f "$ES_HOME/.complete" ] && return
  log "installing Elasticsearch $ES_VERSION (integ-test-zip) from Maven Central"
  local zip=$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip
  if [ ! -f "$zip" ]; then
    mvn -q -B dependency:get -Dtransitive=false \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" >&2 ||
      die "resolving Elasticsearch $ES_VERSION from Maven Central failed"
  fi
  rm -rf "$ES_HOME"
  mkdir -p "$ES_STACK_DIR"
  unzip -q "$zip" -d "$ES_STACK_DIR"
  touch "$ES_HOME/.complete"
}

configure_es() {
  mkdir -p "$ES_DATA" "$ES_HOME/logs"
  cat > "$ES_HOME/config/elasticsearch.yml" <<EOF
# Written by stack/stack.sh: one local node, plain HTTP (the secured variant
# comes with the secrets work), nothing reachable from outside 127.0.0.1.
cluster.name: logpipe-local
node.name: local
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: 9300
discovery.type: single-node
path.data: $ES_DATA
path.logs: $ES_HOME/logs
xpack.security.enabled: false
action.destructive_requires_name: false
# Test machines can have little free disk; the local stack should not go
# read-only because a shared disk is 90% full.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  cat > "$ES_HOME/config/jvm.options.d/logpipe.options" <<EOF
-Xms1g
-Xmx1g
EOF
  chown -R "$ES_USER" "$ES_HOME" "$ES_DATA"
  # The user must be able to reach the install through every parent folder.
  su -s /bin/sh "$ES_USER" -c "test -r '$ES_HOME/config/elasticsearch.yml'" ||
    die "user $ES_USER cannot read $ES_HOME (a parent folder is not traversable): set LOGPIPE_STACK_DIR to a readable place"
}

start_es() {
  if es_ready; then
    log "Elasticsearch already answers on 127.0.0.1:$ES_PORT: reusing it"
    return
  fi
  ensure_es_user
  install_es
  configure_es
  log "starting Elasticsearch $ES_VERSION as user $ES_USER (log: $ES_HOME/logs/stdout.log)"
  setsid nohup su -s /bin/sh "$ES_USER" -c \
    "ES_JAVA_HOME='$JAVA_HOME' exec '$ES_HOME/bin/elasticsearch' -p '$ES_HOME/es.pid'" \
    >"$ES_HOME/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/es-launcher.pid"
  echo "$ES_HOME" >"$STACK_DIR/es-home"
  wait_for Elasticsearch es_ready "$ES_HOME/logs/stdout.log" "$STACK_DIR/es-launcher.pid"
}

# The secured Elasticsearch: a second node of the same install, with its own
# config folder (ES_PATH_CONF), its security module on, TLS on HTTP with the
# test CA's certificate, and API keys. The bootstrap password of the
# built-in `elastic` user is random, in .stack/tls; the script creates a role
# with what logpipe needs, a user `logpipe` with it, and an API key of that
# user whenever the node starts.
configure_es_secure() {
  local d=$ES_STACK_DIR/es-secure
  mkdir -p "$d/data" "$d/logs"
  rm -rf "$d/config"
  cp -r "$ES_HOME/config" "$d/config"
  rm -f "$d/config/elasticsearch.keystore"
  mkdir -p "$d/config/tls"
  cp "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$d/config/tls/"
  [ -f "$TLS_DIR/es-elastic.pass" ] || (umask 077; openssl rand -hex 16 >"$TLS_DIR/es-elastic.pass")
  [ -f "$TLS_DIR/es-logpipe.pass" ] || (umask 077; openssl rand -hex 16 >"$TLS_DIR/es-logpipe.pass")
  cat > "$d/config/elasticsearch.yml" <<YML
# Written by stack/stack.sh: the secured local node (TLS + authentication).
cluster.name: logpipe-local-secure
node.name: secure
network.host: 127.0.0.1
http.port: $ES_SECURE_PORT
transport.port: 9301
discovery.type: single-node
path.data: $d/data
path.logs: $d/logs
xpack.security.enabled: true
xpack.security.authc.api_key.enabled: true
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.key: tls/server.key
xpack.security.http.ssl.certificate: tls/server.pem
xpack.security.http.ssl.certificate_authorities: [ "tls/ca.pem" ]
action.destructive_requires_name: false
cluster.routing.allocation.disk.threshold_enabled: false
YML
  printf -- '-Xms512m\n-Xmx512m\n' >"$d/config/jvm.options.d/logpipe.options"
  chown -R "$ES_USER" "$d"
  chmod 700 "$d/config/tls"
  su -s /bin/sh "$ES_USER" -c "ES_PATH_CONF='$d/config' ES_JAVA_HOME='$JAVA_HOME' '$ES_HOME/bin/elasticsearch-keystore' create" \
    >/dev/null 2>&1 || die "creating the secured Elasticsearch's keystore failed"
  su -s /bin/sh "$ES_USER" -c "ES_PATH_CONF='$d/config' ES_JAVA_HOME='$JAVA_HOME' '$ES_HOME/bin/elasticsearch-keystore' add -f -x bootstrap.password" \
    <"$TLS_DIR/es-elastic.pass" >/dev/null 2>&1 || die "setting the secured Elasticsearch's bootstrap password failed"
  # File-realm role and user: the integ-test-zip lacks the analysis-common
  # module that the .security index's mapping needs, so native users, roles
  # and API keys (all stored in that index) cannot be created; the file
  # realm needs no index. The password reaches elasticsearch-users on stdin.
  cat > "$d/config/roles.yml" <<YML
logpipe_writer:
  cluster: [ monitor, manage_index_templates ]
  indices:
    - names: [ "*" ]
      privileges: [ create_index, write, read, view_index_metadata, manage ]
YML
  chown "$ES_USER" "$d/config/roles.yml"
  printf '%s\n%s\n' "$(cat "$TLS_DIR/es-logpipe.pass")" "$(cat "$TLS_DIR/es-logpipe.pass")" |
    su -s /bin/sh "$ES_USER" -c "ES_PATH_CONF='$d/config' ES_JAVA_HOME='$JAVA_HOME' '$ES_HOME/bin/elasticsearch-users' useradd logpipe -r logpipe_writer" \
      >/dev/null 2>&1 || die "creating the secured Elasticsearch's user failed"
}

# API keys: Elasticsearch keeps them in the .security index, which this
# distribution cannot create (above), so nginx from Debian stands in for that
# one check, as the issue allows: TLS with the test certificate on
# 127.0.0.1:9202, `Authorization: ApiKey <key>` compared with the stack's key
# (401 otherwise), then proxied to the secured node over verified TLS as user
# logpipe. Everything else (TLS, authentication, roles) is Elasticsearch's own.
es_gateway_ready() {
  [ -f "$TLS_DIR/es-api-key" ] &&
    printf 'header = "Authorization: ApiKey %s"\n' "$(cat "$TLS_DIR/es-api-key")" |
    curl -K - -fsS -m 5 --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$ES_GATEWAY_PORT/_cluster/health" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}

# What both nginx servers share (the API-key gateway, the TLS front of the
# local AWS): the master (root) reads keys and config, the workers (nobody)
# only buffer request bodies in DIR/tmp.
nginx_prepare() {
  mkdir -p "$1/tmp" && chmod 711 "$1" && chown nobody:nogroup "$1/tmp" && chmod 700 "$1/tmp"
}

# The top of nginx.conf for DIR: nginx in the foreground, its pid and log there.
nginx_conf_head() {
  local d=$1
  cat <<CONF
user nobody nogroup;
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {}
CONF
}

# The temp folders and TLS key of an nginx `http` block, in DIR.
nginx_http_common() {
  cat <<CONF
  access_log off;
  client_max_body_size 256m;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  ssl_certificate $TLS_DIR/server.pem;
  ssl_certificate_key $TLS_DIR/server.key;
CONF
}

# run_nginx NAME DIR CHECK: starts nginx on DIR/nginx.conf, waits for CHECK.
run_nginx() {
  log "starting $1 (nginx; log: $2/error.log)"
  setsid nohup nginx -c "$2/nginx.conf" -p "$2" >"$2/stdout.log" 2>&1 </dev/null &
  echo $! >"$2/launcher.pid"
  wait_for "$1" "$3" "$2/error.log" "$2/launcher.pid"
}

start_es_gateway() {
  if es_gateway_ready; then
    log "API-key gateway already answers on 127.0.0.1:$ES_GATEWAY_PORT: reusing it"
    return
  fi
  command -v nginx >/dev/null || die "nginx is missing: run stack/deps.sh"
  local d=$STACK_DIR/nginx basic
  stop_pidfile "API-key gateway" "$d/launcher.pid"
  (umask 077; printf '%s' "$(openssl rand -hex 12):$(openssl rand -hex 20)" | base64 -w0 >"$TLS_DIR/es-api-key")
  basic=$(printf 'logpipe:%s' "$(cat "$TLS_DIR/es-logpipe.pass")" | base64 -w0)
  nginx_prepare "$d"
  { echo "# Written by stack/stack.sh: checks the API key, forwards to the secured node."
    nginx_conf_head "$d"
    cat <<CONF
http {
$(nginx_http_common "$d")
  server {
    listen 127.0.0.1:$ES_GATEWAY_PORT ssl;
    location / {
      if (\$http_authorization != "ApiKey $(cat "$TLS_DIR/es-api-key")") {
        add_header Content-Type application/json always;
        return 401 '{"error":{"type":"security_exception","reason":"missing or unknown API key"},"status":401}';
      }
      proxy_pass https://127.0.0.1:$ES_SECURE_PORT;
      proxy_ssl_trusted_certificate $TLS_DIR/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name localhost; # nginx 1.22 matches DNS names only; the certificate has DNS:localhost too
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Basic $basic";
      proxy_read_timeout 300s;
    }
  }
}
CONF
  } | write_private "$d/nginx.conf"
  run_nginx "the API-key gateway on 127.0.0.1:$ES_GATEWAY_PORT" "$d" es_gateway_ready
}

start_es_secure() {
  ensure_es_user
  install_es
  local d=$ES_STACK_DIR/es-secure
  if es_secure_ready; then
    log "secured Elasticsearch already answers on 127.0.0.1:$ES_SECURE_PORT: reusing it"
  else
    configure_es_secure
    log "starting the secured Elasticsearch (TLS, API keys) on 127.0.0.1:$ES_SECURE_PORT (log: $d/logs/stdout.log)"
    setsid nohup su -s /bin/sh "$ES_USER" -c \
      "ES_PATH_CONF='$d/config' ES_JAVA_HOME='$JAVA_HOME' exec '$ES_HOME/bin/elasticsearch' -p '$d/es.pid'" \
      >"$d/logs/stdout.log" 2>&1 </dev/null &
    echo $! >"$STACK_DIR/es-secure-launcher.pid"
    echo "$d" >"$STACK_DIR/es-secure-home"
    wait_for "secured Elasticsearch" es_secure_ready "$d/logs/stdout.log" "$STACK_DIR/es-secure-launcher.pid"
  fi
  start_es_gateway
}

# The default distribution of Elasticsearch 8/9 ships a built-in `logs`
# template (logs-*-*, priority 100, a data stream); the integ-test-zip does
# not, so without this nothing here would see a logpipe template collide
# with it. Same pattern, priority and data_stream (its component templates,
# logs@mappings and friends, live in modules this distribution lacks).
# create=true: added when missing, never overwriting (idempotent, and
# nothing another test installed is touched).
LOGS_TEMPLATE='{"index_patterns":["logs-*-*"],"priority":100,"data_stream":{},"allow_auto_create":true,"_meta":{"description":"as the default distribution'"'"'s built-in logs template (stack/stack.sh)","managed":true}}'
es_logs_template_answer() { # URL CURL-ARGS...: the PUT's HTTP status (200 new, 400 there already)
  "${@:2}" -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    "$1/_index_template/logs?create=true" -d "$LOGS_TEMPLATE"
}
install_logs_templates() {
  local code
  code=$(es_logs_template_answer "http://127.0.0.1:$ES_PORT" curl -m 30)
  case $code in 200|400) ;; *) die "installing the built-in logs template on 127.0.0.1:$ES_PORT failed (HTTP $code)" ;; esac
  code=$(printf 'user = "elastic:%s"\n' "$(cat "$TLS_DIR/es-elastic.pass")" |
    es_logs_template_answer "https://127.0.0.1:$ES_SECURE_PORT" curl -K - -m 30 --cacert "$TLS_DIR/ca.pem")
  case $code in 200|400) ;; *) die "installing the built-in logs template on 127.0.0.1:$ES_SECURE_PORT failed (HTTP $code)" ;; esac
}

# logpipe/local-secure follows the secured servers' current credentials.
seed_secure_secret() {
  "$ROOT/.venv/bin/python" "$ROOT/stack/seed_aws.py" secure "http://127.0.0.1:$AWS_PORT" "$AWS_HOME" \
    "127.0.0.1:$KAFKA_SASL_PORT" "https://127.0.0.1:$ES_GATEWAY_PORT" "$TLS_DIR" >"$AWS_HOME/seed-secure.log" 2>&1 ||
    die "writing the secret logpipe/local-secure failed: read $AWS_HOME/seed-secure.log"
}

# The connections the DAGs use, pointing at the local servers (the secrets
# work serves them from Secrets Manager instead). Added once: an operator's
# edit in the UI survives the next `up`.
seed_airflow_connections() {
  "$AIRFLOW" connections get kafka_default >/dev/null 2>&1 ||
    "$AIRFLOW" connections add kafka_default --conn-json \
      '{"conn_type":"kafka","description":"local Kafka (stack/stack.sh)","extra":{"bootstrap.servers":"127.0.0.1:'"$KAFKA_PORT"'"}}' >/dev/null
  "$AIRFLOW" connections get elasticsearch_default >/dev/null 2>&1 ||
    "$AIRFLOW" connections add elasticsearch_default --conn-json \
      '{"conn_type":"elasticsearch","description":"local Elasticsearch (stack/stack.sh)","host":"127.0.0.1","port":'"$ES_PORT"',"schema":"http"}' >/dev/null
}

# Every part's process alive: a busy machine can make the health check miss,
# and restarting then would kill the DAG runs in flight (and start the
# scheduler's start-up over, which the next check misses again).
airflow_running() {
  local part
  for part in api-server scheduler dag-processor; do
    kill -0 "$(cat "$AIRFLOW_HOME/$part.pid" 2>/dev/null)" 2>/dev/null || return 1
  done
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
  "$AIRFLOW" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || die "airflow db migrate failed: read $AIRFLOW_HOME/db-migrate.log"
  seed_airflow_connections
  local part
  for part in api-server scheduler dag-processor; do
    stop_pidfile "Airflow $part" "$AIRFLOW_HOME/$part.pid"
    setsid nohup "$AIRFLOW" "$part" >"$AIRFLOW_HOME/logs/$part.log" 2>&1 </dev/null &
    echo $! >"$AIRFLOW_HOME/$part.pid"
  done
  log "starting Airflow $("$ROOT/.venv-airflow/bin/python" -c 'import airflow; print(airflow.__version__)' 2>/dev/null) (logs: $AIRFLOW_HOME/logs/)"
  wait_for Airflow airflow_ready "$AIRFLOW_HOME/logs/api-server.log" "$AIRFLOW_HOME/api-server.pid"
}

# moto keeps its state in memory: a new process is seeded again (new key).
start_aws() {
  if aws_ready; then
    log "local AWS (moto) already answers on 127.0.0.1:$AWS_PORT: reusing it"
    return
  fi
  [ -x "$ROOT/.venv/bin/moto_server" ] || die "moto is not installed: run stack/deps.sh"
  stop_pidfile "local AWS" "$AWS_HOME/moto.pid"
  aws_answers && die "port $AWS_PORT answers but is not this stack's seeded moto: stop it first"
  mkdir -p "$AWS_HOME"
  rm -f "$AWS_HOME/credentials"
  log "starting the local AWS: moto $("$ROOT/.venv/bin/python" -c 'import moto; print(moto.__version__)') (log: $AWS_HOME/moto.log)"
  # Three unsigned actions for seed_aws.py to create the IAM user; every
  # request after them is authenticated and authorised.
  INITIAL_NO_AUTH_ACTION_COUNT=3 setsid nohup "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$AWS_PORT" \
    >"$AWS_HOME/moto.log" 2>&1 </dev/null &
  echo $! >"$AWS_HOME/moto.pid"
  wait_for "local AWS" aws_answers "$AWS_HOME/moto.log" "$AWS_HOME/moto.pid"
  "$ROOT/.venv/bin/python" "$ROOT/stack/seed_aws.py" bootstrap "http://127.0.0.1:$AWS_PORT" "$AWS_HOME" \
    "127.0.0.1:$KAFKA_PORT" "http://127.0.0.1:$ES_PORT" >"$AWS_HOME/seed.log" 2>&1 ||
    die "seeding the local AWS failed: read $AWS_HOME/seed.log"
  log "local AWS seeded: secrets logpipe/local and logpipe/local-secure, bucket logpipe-mwaa-local; credentials in $AWS_HOME/credentials (profile logpipe-local)"
}

# The local AWS over https, as AWS's own endpoints are: nginx with the test
# CA's certificate on 127.0.0.1:$AWS_TLS_PORT in front of moto. Clients that
# trust the test CA (the bundle tests put it in a system trust store) reach
# Secrets Manager the way they reach it on AWS. The Host header is passed
# as the client sent it: SigV4 signs it, and moto checks the signature.
start_aws_tls() {
  if aws_tls_ready; then
    log "the local AWS's TLS front already answers on 127.0.0.1:$AWS_TLS_PORT: reusing it"
    return
  fi
  command -v nginx >/dev/null || die "nginx is missing: run stack/deps.sh"
  local d=$STACK_DIR/nginx-aws
  stop_pidfile "the local AWS's TLS front" "$d/launcher.pid"
  nginx_prepare "$d"
  { echo "# Written by stack/stack.sh: https in front of the local AWS (moto)."
    nginx_conf_head "$d"
    cat <<CONF
http {
$(nginx_http_common "$d")
  server {
    listen 127.0.0.1:$AWS_TLS_PORT ssl;
    location / {
      proxy_pass http://127.0.0.1:$AWS_PORT;
      proxy_set_header Host \$http_host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
  } >"$d/nginx.conf"
  run_nginx "the local AWS's TLS front on 127.0.0.1:$AWS_TLS_PORT" "$d" aws_tls_ready
}

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

# Where the running Elasticsearch lives (it may have moved to /var/tmp).
[ -f "$STACK_DIR/es-home" ] && ES_HOME=$(cat "$STACK_DIR/es-home") && ES_DATA=$(dirname "$ES_HOME")/es-data
ES_SECURE_HOME=$(cat "$STACK_DIR/es-secure-home" 2>/dev/null || echo "$STACK_DIR/es-secure")

cmd_down() {
  stop_one kafka-acl
  stop_one kafka-scram
  stop_one airflow
  stop_one aws
  stop_one es-secure
  stop_one es
  stop_one kafka
}

cmd_status() {
  local rc=0
  if kafka_ready; then
    echo "kafka          up    127.0.0.1:$KAFKA_PORT  version $KAFKA_VERSION  data $KAFKA_HOME/data  log $KAFKA_HOME/kafka.log"
  else
    echo "kafka          down  127.0.0.1:$KAFKA_PORT"; rc=1
  fi
  if kafka_scram_ready; then
    echo "kafka-scram    up    127.0.0.1:$KAFKA_SCRAM_PORT  version $KAFKA_SCRAM_VERSION  SASL_SSL SCRAM-SHA-512 (user logpipe-scram)"
  else
    echo "kafka-scram    down  127.0.0.1:$KAFKA_SCRAM_PORT  (started on demand: stack.sh up kafka-scram)"
  fi
  if kafka_acl_ready; then
    echo "kafka-acl      up    127.0.0.1:$KAFKA_ACL_PORT  version $KAFKA_VERSION  SASL PLAIN (user logpipe-acl), ACLs enforced; admin 127.0.0.1:$KAFKA_ACL_ADMIN_PORT"
  else
    echo "kafka-acl      down  127.0.0.1:$KAFKA_ACL_PORT  (started on demand: stack.sh up kafka-acl)"
  fi
  if es_ready; then
    local v
    # The integ-test-zip has no rest-root module (GET / answers 405): ask _nodes.
    v=$(curl -fsS -m 3 "http://127.0.0.1:$ES_PORT/_nodes/_local?filter_path=nodes.*.version" |
        sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p')
    echo "elasticsearch  up    127.0.0.1:$ES_PORT  version $v  data $ES_DATA  log $ES_HOME/logs/stdout.log"
  else
    echo "elasticsearch  down  127.0.0.1:$ES_PORT"; rc=1
  fi
  if es_secure_ready; then
    echo "es-secure      up    https://127.0.0.1:$ES_SECURE_PORT  TLS (CA $TLS_DIR/ca.pem), user logpipe; API keys via https://127.0.0.1:$ES_GATEWAY_PORT"
  else
    echo "es-secure      down  https://127.0.0.1:$ES_SECURE_PORT"; rc=1
  fi
  if aws_ready; then
    echo "aws            up    http://127.0.0.1:$AWS_PORT  moto  credentials $AWS_HOME/credentials (profile logpipe-local)"
  else
    echo "aws            down  http://127.0.0.1:$AWS_PORT"; rc=1
  fi
  if aws_tls_ready; then
    echo "aws-tls        up    https://127.0.0.1:$AWS_TLS_PORT  nginx in front of moto  CA $TLS_DIR/ca.pem"
  else
    echo "aws-tls        down  https://127.0.0.1:$AWS_TLS_PORT"; rc=1
  fi
  if airflow_ready; then
    echo "airflow        up    http://127.0.0.1:$AIRFLOW_PORT  version $("$ROOT/.venv-airflow/bin/python" -c 'import airflow; print(airflow.__version__)')  home $AIRFLOW_HOME"
  else
    echo "airflow        down  http://127.0.0.1:$AIRFLOW_PORT"; rc=1
  fi
  return $rc
}

stop_one() {
  case ${1:-} in
    kafka) stop_pidfile Kafka "$KAFKA_HOME/kafka.pid" ;;
    kafka-scram) stop_pidfile "Kafka (SCRAM)" "$KAFKA_SCRAM_HOME/kafka.pid" ;;
    kafka-acl) stop_pidfile "Kafka (ACLs)" "$KAFKA_ACL_HOME/kafka.pid" ;;
    es) stop_pidfile Elasticsearch "$STACK_DIR/es-launcher.pid"
        if [ -f "$ES_HOME/es.pid" ]; then stop_pidfile Elasticsearch "$ES_HOME/es.pid"; fi ;;
    aws) stop_pidfile "the local AWS's TLS front" "$STACK_DIR/nginx-aws/launcher.pid"
         stop_pidfile "local AWS" "$AWS_HOME/moto.pid" ;;
    es-secure) stop_pidfile "API-key gateway" "$STACK_DIR/nginx/launcher.pid"
               stop_pidfile "secured Elasticsearch" "$STACK_DIR/es-secure-launcher.pid"
               if [ -f "$ES_SECURE_HOME/es.pid" ]; then stop_pidfile "secured Elasticsearch" "$ES_SECURE_HOME/es.pid"; fi ;;
    airflow) for part in dag-processor scheduler api-server; do
               stop_pidfile "Airflow $part" "$AIRFLOW_HOME/$part.pid"
             done ;;
    *) die "usage: stack.sh stop kafka|kafka-scram|kafka-acl|es|es-secure|airflow|aws" ;;
  esac
}

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
  # The three-broker, three-node cluster for the failover tests (stack/cluster.sh).
  cluster) source "$ROOT/stack/cluster.sh"; cluster_main "${@:2}" ;;
  logs)
    case ${2:-} in
      kafka) tail -n "${3:-50}" "$KAFKA_HOME/kafka.log" ;;
    kafka-scram) tail -n "${3:-50}" "$KAFKA_SCRAM_HOME/kafka.log" ;;
    kafka-acl) tail -n "${3:-50}" "$KAFKA_ACL_HOME/kafka.log" ;;
      es) tail -n "${3:-50}" "$ES_HOME/logs/stdout.log" ;;
      airflow) tail -n "${3:-50}" "$AIRFLOW_HOME"/logs/{api-server,scheduler,dag-processor}.log ;;
      aws) tail -n "${3:-50}" "$AWS_HOME/moto.log" ;;
      es-secure) tail -n "${3:-50}" "$ES_SECURE_HOME/logs/stdout.log" ;;
      *) die "usage: stack.sh logs kafka|es|airflow|aws [lines]" ;;
    esac ;;
  *) echo "usage: stack.sh up|down|status|stop kafka|es|airflow|aws|logs kafka|es|airflow|aws" >&2; exit 2 ;;
esac
