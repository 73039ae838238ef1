# kafka.sh: the stack's Kafka brokers, sourced by stack.sh: the shared
# single-node broker (PLAINTEXT 9092, SASL_SSL 9094) that `up` starts, and
# two started on demand by the tests that need them: a Kafka 3.9 broker with
# a SCRAM-SHA-512 listener (`up kafka-scram`) and one that enforces ACLs
# (`up kafka-acl`). Each has its ports, probe, configuration, start, stop,
# status line and log here; configuration comes from the templates in
# stack/kafka/ (single-node.properties, what all three share, followed by
# broker.properties, scram.properties or acl.properties).
#
# The broker jars and their runtime dependencies come from Maven Central
# through Maven (stack/kafka/pom.xml); the system Java 17 runs them.

# shellcheck shell=bash
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/stack/kafka/pom.xml")
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_SASL_PORT=9094
# A Kafka 3.9 broker whose listener logpipe can log in to with SCRAM
# (start_kafka_scram; Debian 12's librdkafka cannot, on Kafka 4.x).
KAFKA_SCRAM_VERSION=3.9.1
KAFKA_SCRAM_PORT=9096
KAFKA_SCRAM_CONTROLLER_PORT=9097
# shellcheck disable=SC2034 # in scram.properties
KAFKA_SCRAM_INTERNAL_PORT=9098
# A broker that enforces ACLs (start_kafka_acl): SASL PLAIN user logpipe-acl
# on 9110 has exactly the ACLs a test grants it; 9112 is its admin listener.
KAFKA_ACL_PORT=9110
KAFKA_ACL_CONTROLLER_PORT=9111
KAFKA_ACL_ADMIN_PORT=9112
KAFKA_HOME=$STACK_DIR/kafka
KAFKA_SCRAM_HOME=$STACK_DIR/kafka-scram
KAFKA_ACL_HOME=$STACK_DIR/kafka-acl

kafka_ready() { kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 3 >/dev/null 2>&1; }

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

# SCRAM credentials live in the cluster metadata: upserted after every start
# (idempotent) with Kafka's own ConfigCommand through the plaintext listener.
# The password reaches it in a java @argfile, not argv. (The same upsert
# through confluent-kafka's Admin API made credentials the broker refused,
# and ConfigCommand's --add-config-file does not take the SCRAM syntax.)
seed_kafka_users() {
  new_password kafka-scram
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

# write_kafka_properties HOME CONTROLLER-PORT TEMPLATE WHAT: HOME's
# server.properties (mode 0600: it holds passwords), single-node.properties
# followed by TEMPLATE from stack/kafka/, rendered.
# shellcheck disable=SC2034 # the template's variables, read by render
write_kafka_properties() {
  mkdir -p "$1/data"
  local BROKER_HOME=$1 CONTROLLER_PORT=$2 KEYSTORE_PASS PLAIN_PASS ACL_PASS
  KEYSTORE_PASS=$(cat "$TLS_DIR/keystore.pass")
  PLAIN_PASS=$(cat "$TLS_DIR/kafka-plain.pass" 2>/dev/null || true)
  ACL_PASS=$(cat "$TLS_DIR/kafka-acl.pass" 2>/dev/null || true)
  { echo "# Written by stack/kafka.sh from stack/kafka/single-node.properties and $3: $4."
    render "$ROOT/stack/kafka/single-node.properties"
    render "$ROOT/stack/kafka/$3"
  } | write_private "$1/server.properties"
}

# format_kafka HOME NAME [ARGS...]: formats HOME's storage once, with a new
# cluster id (ARGS: more StorageTool options, in a java @argfile because
# they may hold a password).
format_kafka() {
  local home=$1 name=$2 cluster_id
  [ -f "$home/data/meta.properties" ] && return
  cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  (umask 077; printf '%s\n' kafka.tools.StorageTool format -t "$cluster_id" -c "$home/server.properties" "${@:3}" \
    >"$home/format.args")
  kafka_java "@$home/format.args" >"$home/format.log" 2>&1 ||
    die "formatting $name's storage failed: read $home/format.log"
  rm -f "$home/format.args"
}

configure_kafka() {
  write_kafka_properties "$KAFKA_HOME" "$KAFKA_CONTROLLER_PORT" broker.properties "the stack's Kafka"
  format_kafka "$KAFKA_HOME" Kafka
}

# start_kafka_jvm HOME JARS [JAVA-OPTIONS]: kafka.Kafka on
# HOME/server.properties, with the jars in JARS/libs, in a session of its
# own; its pid in HOME/kafka.pid. JAVA-OPTIONS come after kafka_java's own
# (the last -Xmx on the line wins).
start_kafka_jvm() {
  setsid nohup bash -c "$(declare -f kafka_java); JAVA_HOME='$JAVA_HOME' KAFKA_HOME='$2' ROOT='$ROOT' \
    kafka_java ${*:3} kafka.Kafka '$1/server.properties'" >"$1/kafka.log" 2>&1 </dev/null &
  echo $! >"$1/kafka.pid"
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
  start_kafka_jvm "$KAFKA_HOME" "$KAFKA_HOME"
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
  write_kafka_properties "$KAFKA_SCRAM_HOME" "$KAFKA_SCRAM_CONTROLLER_PORT" scram.properties "the SCRAM-SHA-512 broker"
  [ -f "$KAFKA_SCRAM_HOME/data/meta.properties" ] && return
  KAFKA_HOME=$KAFKA_SCRAM_HOME format_kafka "$KAFKA_SCRAM_HOME" "the SCRAM broker" --add-scram \
    "SCRAM-SHA-512=[name=logpipe-scram,iterations=8192,password=$(cat "$TLS_DIR/kafka-scram.pass")]"
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
  start_kafka_jvm "$home" "$jars"
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
  new_password kafka-acl
  write_kafka_properties "$KAFKA_ACL_HOME" "$KAFKA_ACL_CONTROLLER_PORT" acl.properties "the broker that enforces ACLs"
  format_kafka "$KAFKA_ACL_HOME" "the ACL broker"
}

start_kafka_acl() {
  run_on_demand_kafka "the ACL broker on 127.0.0.1:$KAFKA_ACL_PORT" "$KAFKA_ACL_HOME" "$KAFKA_VERSION" \
    kafka_acl_ready configure_kafka_acl "$KAFKA_HOME"
}

stop_kafka() { stop_pidfile Kafka "$KAFKA_HOME/kafka.pid"; }
stop_kafka_scram() { stop_pidfile "Kafka (SCRAM)" "$KAFKA_SCRAM_HOME/kafka.pid"; }
stop_kafka_acl() { stop_pidfile "Kafka (ACLs)" "$KAFKA_ACL_HOME/kafka.pid"; }

logs_kafka() { tail -n "$1" "$KAFKA_HOME/kafka.log"; }
logs_kafka_scram() { tail -n "$1" "$KAFKA_SCRAM_HOME/kafka.log"; }
logs_kafka_acl() { tail -n "$1" "$KAFKA_ACL_HOME/kafka.log"; }

status_kafka() {
  if kafka_ready; then
    echo "kafka          up    127.0.0.1:$KAFKA_PORT  version $KAFKA_VERSION  data $KAFKA_HOME/data  log $KAFKA_HOME/kafka.log"
  else
    echo "kafka          down  127.0.0.1:$KAFKA_PORT"; return 1
  fi
}
status_kafka_scram() {
  if kafka_scram_ready; then
    echo "kafka-scram    up    127.0.0.1:$KAFKA_SCRAM_PORT  version $KAFKA_SCRAM_VERSION  SASL_SSL SCRAM-SHA-512 (user logpipe-scram)"
  else
    echo "kafka-scram    down  127.0.0.1:$KAFKA_SCRAM_PORT  (started on demand: stack.sh up kafka-scram)"; return 1
  fi
}
status_kafka_acl() {
  if kafka_acl_ready; then
    echo "kafka-acl      up    127.0.0.1:$KAFKA_ACL_PORT  version $KAFKA_VERSION  SASL PLAIN (user logpipe-acl), ACLs enforced; admin 127.0.0.1:$KAFKA_ACL_ADMIN_PORT"
  else
    echo "kafka-acl      down  127.0.0.1:$KAFKA_ACL_PORT  (started on demand: stack.sh up kafka-acl)"; return 1
  fi
}
