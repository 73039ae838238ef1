# cluster.sh: a three-broker Kafka cluster and a three-node Elasticsearch
# cluster on 127.0.0.1, for the failover tests (tests/cluster/) and for
# trying logpipe against replicated servers. Sourced by stack.sh for
#
#   stack.sh cluster up       start what is not running (each node), wait until the clusters are whole
#   stack.sh cluster down     stop every node of the cluster
#   stack.sh cluster status   show each node, the quorum and the cluster health
#   stack.sh cluster stop kafka-N|es-N|controller-N   stop one node (SIGTERM; the tests kill -9 by pid file)
#
# It reuses stack.sh's installs (the Kafka jars in .stack/kafka/libs, the
# Elasticsearch integ-test-zip), the node templates (stack/kafka.sh's
# start_kafka_jvm, stack/elasticsearch.sh's elasticsearch.yml) and helpers
# (wait_for, stop_pidfile, log, die), which is why it is sourced rather than
# run. The single-node stack stays the default (make demo, make integration);
# this one has its own ports and data under .stack/cluster/ and runs beside it.
#
# Kafka: three KRaft controllers (a three-voter quorum) and three brokers in
# separate JVMs. Separate roles so that killing brokers never costs the
# quorum: with two brokers down the controller still fences them and shrinks
# the ISR, so a producer meets NOT_ENOUGH_REPLICAS, the real
# min.insync.replicas refusal, rather than a metadata standstill.
# default.replication.factor=3 and min.insync.replicas=2, internal topics the
# same. Elasticsearch: three master-eligible data nodes, 384 MiB heaps.
# Memory: about 0.3 GB per controller, 0.6 GB per broker, 0.8 GB per ES node.

# shellcheck shell=bash
CLUSTER_DIR=$STACK_DIR/cluster
CLUSTER_NODES="1 2 3"
CLUSTER_KAFKA_PORT_BASE=19090      # broker N: 19090+N (PLAINTEXT)
CLUSTER_CONTROLLER_PORT_BASE=19190 # controller N: 19190+N
CLUSTER_ES_PORT_BASE=19200         # ES node N: HTTP 19200+N
CLUSTER_ES_TRANSPORT_BASE=19300    # ES node N: transport 19300+N
CLUSTER_BOOTSTRAP=127.0.0.1:19091,127.0.0.1:19092,127.0.0.1:19093
CLUSTER_ES_URL=http://127.0.0.1:19201
# Three ES nodes starting at once on a busy 2-core machine took over 3 minutes.
# shellcheck disable=SC2034 # read by stack.sh's wait_for
READY_TIMEOUT=${LOGPIPE_CLUSTER_TIMEOUT:-600}

pid_alive() { kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
joined() { local IFS=,; echo "$*"; }

cluster_voters() {
  local n v=()
  for n in $CLUSTER_NODES; do v+=("$((100 + n))@127.0.0.1:$((CLUSTER_CONTROLLER_PORT_BASE + n))"); done
  joined "${v[@]}"
}

# All three brokers registered (unfenced) in the metadata one of them serves.
cluster_kafka_ready() {
  [ "$(kcat -L -b "$CLUSTER_BOOTSTRAP" -m 5 2>/dev/null | grep -cE '^ +broker [0-9]+ at')" = 3 ]
}
cluster_broker_ready() {
  kcat -L -b "127.0.0.1:$((CLUSTER_KAFKA_PORT_BASE + $1))" -m 3 2>/dev/null | grep -qE "^ +broker $1 at"
}
cluster_es_node_ready() { curl -fsS -m 3 "http://127.0.0.1:$((CLUSTER_ES_PORT_BASE + $1))/_nodes/_local" >/dev/null 2>&1; }
cluster_es_ready() {
  curl -fsS -m 5 "$CLUSTER_ES_URL/_cluster/health?wait_for_nodes=3&wait_for_status=yellow&timeout=3s" 2>/dev/null |
    grep -q '"number_of_nodes":3,'
}

# The folder of controller N (controller-N) or broker N (kafka-N).
cluster_kafka_home() { [ "$1" = controller ] && echo "$CLUSTER_DIR/controller-$2" || echo "$CLUSTER_DIR/kafka-$2"; }

# cluster_kafka_properties ROLE N: the server.properties of controller or broker N.
cluster_kafka_properties() {
  local role=$1 n=$2 home
  home=$(cluster_kafka_home "$1" "$2")
  echo "# Written by stack/cluster.sh: $role $n of the local Kafka cluster."
  if [ "$role" = controller ]; then
    cat <<EOF
process.roles=controller
node.id=$((100 + n))
listeners=CONTROLLER://127.0.0.1:$((CLUSTER_CONTROLLER_PORT_BASE + n))
EOF
  else
    cat <<EOF
process.roles=broker
node.id=$n
listeners=PLAINTEXT://127.0.0.1:$((CLUSTER_KAFKA_PORT_BASE + n))
advertised.listeners=PLAINTEXT://127.0.0.1:$((CLUSTER_KAFKA_PORT_BASE + n))
inter.broker.listener.name=PLAINTEXT
EOF
  fi
  cat <<EOF
controller.quorum.voters=$(cluster_voters)
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$home/data
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
# A killed broker is fenced (and leaves the ISR) after 6 s rather than 9.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
message.max.bytes=16777216
log.retention.hours=24
EOF
}

# cluster_kafka_start ROLE N: formats (once, with the cluster's id) and starts one node.
cluster_kafka_start() {
  local role=$1 n=$2 home heap
  home=$(cluster_kafka_home "$1" "$2")
  [ "$role" = controller ] && heap=-Xmx256m || heap=-Xmx512m
  mkdir -p "$home/data"
  cluster_kafka_properties "$role" "$n" >"$home/server.properties"
  [ -f "$CLUSTER_DIR/kafka-cluster-id" ] ||
    KAFKA_HOME=$KAFKA_HOME kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$CLUSTER_DIR/kafka-cluster-id"
  if [ ! -f "$home/data/meta.properties" ]; then
    kafka_java kafka.tools.StorageTool format -t "$(cat "$CLUSTER_DIR/kafka-cluster-id")" \
      -c "$home/server.properties" >"$home/format.log" 2>&1 ||
      die "formatting $role $n's storage failed: read $home/format.log"
  fi
  log "starting Kafka $role $n (log: $home/kafka.log)"
  # kafka_java's -Xmx1g is the single node's: the node's own heap follows it.
  start_kafka_jvm "$home" "$KAFKA_HOME" -Xms128m "$heap"
}

cluster_kafka_up() {
  install_kafka
  mkdir -p "$CLUSTER_DIR"
  local n started=()
  for n in $CLUSTER_NODES; do
    port_answers $((CLUSTER_CONTROLLER_PORT_BASE + n)) && continue
    pid_alive "$CLUSTER_DIR/controller-$n/kafka.pid" || cluster_kafka_start controller "$n"
    started+=("controller-$n")
  done
  for n in $CLUSTER_NODES; do
    cluster_broker_ready "$n" && continue
    # A broker still starting (port open or not, not yet registered) is waited for.
    pid_alive "$CLUSTER_DIR/kafka-$n/kafka.pid" || cluster_kafka_start broker "$n"
    started+=("kafka-$n")
  done
  for n in "${started[@]}"; do
    wait_for "cluster $n" "port_answers $(cluster_node_port "$n")" "$CLUSTER_DIR/$n/kafka.log" "$CLUSTER_DIR/$n/kafka.pid"
  done
  wait_for "the Kafka cluster (3 brokers)" cluster_kafka_ready "$CLUSTER_DIR/kafka-1/kafka.log" "$CLUSTER_DIR/kafka-1/kafka.pid"
}

cluster_node_port() {
  case $1 in
    controller-*) echo $((CLUSTER_CONTROLLER_PORT_BASE + ${1#controller-})) ;;
    kafka-*) echo $((CLUSTER_KAFKA_PORT_BASE + ${1#kafka-})) ;;
  esac
}

# Each ES node: its own config folder copied from the install (as the
# secured node's is: es_node_config), its elasticsearch.yml from the stack's
# template with the cluster's discovery, data and logs in .stack/cluster/es-N.
cluster_es_configure() {
  local n=$1 d=$ES_CLUSTER_DIR/es-$1 seeds=() m
  for m in $CLUSTER_NODES; do seeds+=("\"127.0.0.1:$((CLUSTER_ES_TRANSPORT_BASE + m))\""); done
  es_node_config "$d" 384m
  es_node_yml "node $n of the local three-node cluster" logpipe-cluster "es-$n" \
    $((CLUSTER_ES_PORT_BASE + n)) $((CLUSTER_ES_TRANSPORT_BASE + n)) "$d/data" "$d/logs" false \
    "discovery.seed_hosts: [ $(joined "${seeds[@]}") ]
cluster.initial_master_nodes: [ \"es-1\", \"es-2\", \"es-3\" ]" >"$d/config/elasticsearch.yml"
  chown -R "$ES_USER" "$d"
}

cluster_es_start() {
  local n=$1 d=$ES_CLUSTER_DIR/es-$1
  cluster_es_configure "$n"
  log "starting Elasticsearch node es-$n on 127.0.0.1:$((CLUSTER_ES_PORT_BASE + n)) (log: $d/logs/stdout.log)"
  es_run "$d/launcher.pid" "$d/config" "$d/es.pid" "$d/logs/stdout.log"
}

cluster_es_up() {
  ensure_es_user
  install_es
  ES_CLUSTER_DIR=$ES_STACK_DIR/cluster
  mkdir -p "$ES_CLUSTER_DIR" && chmod 755 "$ES_CLUSTER_DIR"
  echo "$ES_CLUSTER_DIR" >"$CLUSTER_DIR/es-cluster-dir"
  local n started=()
  for n in $CLUSTER_NODES; do
    cluster_es_node_ready "$n" && continue
    # A node still starting (slow on a busy machine) is waited for, not started twice.
    if pid_alive "$ES_CLUSTER_DIR/es-$n/launcher.pid"; then
      log "cluster Elasticsearch es-$n is starting: waiting for it"
    else
      cluster_es_start "$n"
    fi
    started+=("$n")
  done
  for n in "${started[@]}"; do
    wait_for "cluster Elasticsearch es-$n" "cluster_es_node_ready $n" \
      "$ES_CLUSTER_DIR/es-$n/logs/stdout.log" "$ES_CLUSTER_DIR/es-$n/launcher.pid"
  done
  wait_for "the Elasticsearch cluster (3 nodes)" cluster_es_ready \
    "$ES_CLUSTER_DIR/es-1/logs/stdout.log" "$ES_CLUSTER_DIR/es-1/launcher.pid"
}

cluster_es_dir() { cat "$CLUSTER_DIR/es-cluster-dir" 2>/dev/null || echo "$CLUSTER_DIR"; }

cluster_stop_one() {
  local d
  case ${1:-} in
    kafka-[123]|controller-[123]) stop_pidfile "cluster $1" "$CLUSTER_DIR/$1/kafka.pid" ;;
    es-[123]) d=$(cluster_es_dir)/$1
              stop_pidfile "cluster Elasticsearch $1" "$d/launcher.pid"
              if [ -f "$d/es.pid" ]; then stop_pidfile "cluster Elasticsearch $1" "$d/es.pid"; fi ;;
    *) die "usage: stack.sh cluster stop kafka-N|controller-N|es-N (N = 1, 2, 3)" ;;
  esac
}

cluster_status() {
  local n rc=0 port
  for n in $CLUSTER_NODES; do
    port=$((CLUSTER_CONTROLLER_PORT_BASE + n))
    if port_answers "$port"; then echo "controller-$n   up    127.0.0.1:$port  voter $((100 + n))"
    else echo "controller-$n   down  127.0.0.1:$port"; rc=1; fi
  done
  for n in $CLUSTER_NODES; do
    port=$((CLUSTER_KAFKA_PORT_BASE + n))
    if cluster_broker_ready "$n"; then echo "kafka-$n        up    127.0.0.1:$port  broker $n  data $CLUSTER_DIR/kafka-$n/data"
    else echo "kafka-$n        down  127.0.0.1:$port"; rc=1; fi
  done
  for n in $CLUSTER_NODES; do
    port=$((CLUSTER_ES_PORT_BASE + n))
    if cluster_es_node_ready "$n"; then echo "es-$n           up    127.0.0.1:$port  data $(cluster_es_dir)/es-$n/data"
    else echo "es-$n           down  127.0.0.1:$port"; rc=1; fi
  done
  echo "bootstrap      $CLUSTER_BOOTSTRAP"
  echo "elasticsearch  $(curl -fsS -m 3 "$CLUSTER_ES_URL/_cluster/health?filter_path=status,number_of_nodes" 2>/dev/null || echo unreachable)"
  return $rc
}

cluster_down() {
  local n
  for n in $CLUSTER_NODES; do cluster_stop_one "es-$n"; done
  for n in $CLUSTER_NODES; do cluster_stop_one "kafka-$n"; done
  for n in $CLUSTER_NODES; do cluster_stop_one "controller-$n"; done
}

cluster_main() {
  case ${1:-} in
    up) command -v kcat >/dev/null || die "kcat is missing: run stack/deps.sh"
        cluster_kafka_up
        cluster_es_up
        log "cluster ready: Kafka $CLUSTER_BOOTSTRAP, Elasticsearch $CLUSTER_ES_URL (and :19202, :19203)" ;;
    down) cluster_down ;;
    status) cluster_status ;;
    stop) cluster_stop_one "${2:-}" ;;
    *) die "usage: stack.sh cluster up|down|status|stop kafka-N|controller-N|es-N" ;;
  esac
}
