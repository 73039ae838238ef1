# elasticsearch.sh: the stack's Elasticsearch, sourced by stack.sh: the
# plain node on 127.0.0.1:9200 and the secured node (TLS, users, API keys)
# on 9201 with its API-key gateway on 9202, both nodes of one install. Each
# has its ports, probe, install, configuration, start, stop, status line and
# log here. Both nodes' elasticsearch.yml are rendered from one template,
# stack/elasticsearch/elasticsearch.yml; the secured node's adds only
# stack/elasticsearch/secure.yml, so a setting added to the template reaches
# both (and the cluster's nodes, stack/cluster.sh).
#
# The integ-test-zip distribution comes from Maven Central through Maven (it
# bundles no JDK: the system Java 17 runs it). Elasticsearch refuses to run
# as root, so it runs as an unprivileged user this script creates.

# shellcheck shell=bash
ES_VERSION=${LOGPIPE_ES_VERSION:-8.19.21}
ES_PORT=9200
ES_TRANSPORT_PORT=9300
ES_SECURE_PORT=9201
ES_SECURE_TRANSPORT_PORT=9301
ES_GATEWAY_PORT=9202
ES_USER=logpipe
ES_STACK_DIR=$STACK_DIR
ES_HOME=$ES_STACK_DIR/elasticsearch-$ES_VERSION
ES_DATA=$ES_STACK_DIR/es-data
# Where the running nodes live (they may have moved to /var/tmp: choose_es_dir).
[ -f "$STACK_DIR/es-home" ] && ES_HOME=$(cat "$STACK_DIR/es-home") && ES_DATA=$(dirname "$ES_HOME")/es-data
ES_SECURE_HOME=$(cat "$STACK_DIR/es-secure-home" 2>/dev/null || echo "$STACK_DIR/es-secure")

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

# es_node_yml ROLE CLUSTER NODE HTTP-PORT TRANSPORT-PORT DATA LOGS SECURITY
# [DISCOVERY]: stack/elasticsearch/elasticsearch.yml rendered for one node
# (DISCOVERY: its discovery settings, single-node by default).
# shellcheck disable=SC2034 # the template's variables, read by render
es_node_yml() {
  local ES_ROLE=$1 ES_CLUSTER_NAME=$2 ES_NODE_NAME=$3 ES_HTTP_PORT=$4 ES_TRANSPORT_PORT=$5 \
        ES_NODE_DATA=$6 ES_NODE_LOGS=$7 ES_SECURITY=$8 ES_DISCOVERY=${9:-"discovery.type: single-node"}
  render "$ROOT/stack/elasticsearch/elasticsearch.yml"
}

# es_node_config DIR HEAP: a node's own config folder DIR/config
# (ES_PATH_CONF), copied from the install's without its keystore, with HEAP
# for -Xms and -Xmx; its data and logs in DIR too. The caller writes its
# elasticsearch.yml.
es_node_config() {
  mkdir -p "$1/data" "$1/logs"
  rm -rf "$1/config"
  cp -r "$ES_HOME/config" "$1/config"
  rm -f "$1/config/elasticsearch.keystore"
  printf -- '-Xms%s\n-Xmx%s\n' "$2" "$2" >"$1/config/jvm.options.d/logpipe.options"
}

# es_run LAUNCHER-PIDFILE CONF-DIR PIDFILE LOG: starts one node of the
# install as $ES_USER in a session of its own (CONF-DIR: its ES_PATH_CONF,
# empty for the install's own config).
# shellcheck disable=SC2016 # the single quotes are for su's shell; $2 expands here
es_run() {
  setsid nohup su -s /bin/sh "$ES_USER" -c \
    "${2:+ES_PATH_CONF='$2' }ES_JAVA_HOME='$JAVA_HOME' exec '$ES_HOME/bin/elasticsearch' -p '$3'" \
    >"$4" 2>&1 </dev/null &
  echo $! >"$1"
}

configure_es() {
  mkdir -p "$ES_DATA" "$ES_HOME/logs"
  es_node_yml "one local node, plain HTTP" logpipe-local local "$ES_PORT" "$ES_TRANSPORT_PORT" \
    "$ES_DATA" "$ES_HOME/logs" false >"$ES_HOME/config/elasticsearch.yml"
  printf -- '-Xms1g\n-Xmx1g\n' >"$ES_HOME/config/jvm.options.d/logpipe.options"
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
  es_run "$STACK_DIR/es-launcher.pid" "" "$ES_HOME/es.pid" "$ES_HOME/logs/stdout.log"
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
  es_node_config "$d" 512m
  mkdir -p "$d/config/tls"
  cp "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$d/config/tls/"
  new_password es-elastic
  new_password es-logpipe
  { es_node_yml "the secured local node (TLS + authentication)" logpipe-local-secure secure \
      "$ES_SECURE_PORT" "$ES_SECURE_TRANSPORT_PORT" "$d/data" "$d/logs" true
    cat "$ROOT/stack/elasticsearch/secure.yml"
  } >"$d/config/elasticsearch.yml"
  chown -R "$ES_USER" "$d"
  chmod 700 "$d/config/tls"
  es_secure_tool keystore create </dev/null || die "creating the secured Elasticsearch's keystore failed"
  es_secure_tool keystore add -f -x bootstrap.password <"$TLS_DIR/es-elastic.pass" ||
    die "setting the secured Elasticsearch's bootstrap password failed"
  # File-realm role and user: the integ-test-zip lacks the analysis-common
  # module that the .security index's mapping needs, so native users, roles
  # and API keys (all stored in that index) cannot be created; the file
  # realm needs no index. The password reaches elasticsearch-users on stdin.
  cp "$ROOT/stack/elasticsearch/roles.yml" "$d/config/roles.yml"
  chown "$ES_USER" "$d/config/roles.yml"
  printf '%s\n%s\n' "$(cat "$TLS_DIR/es-logpipe.pass")" "$(cat "$TLS_DIR/es-logpipe.pass")" |
    es_secure_tool users useradd logpipe -r logpipe_writer || die "creating the secured Elasticsearch's user failed"
}

# es_secure_tool TOOL ARGS...: bin/elasticsearch-TOOL of the install on the
# secured node's config, as $ES_USER (stdin passed through, output dropped).
es_secure_tool() {
  su -s /bin/sh "$ES_USER" -c "ES_PATH_CONF='$ES_STACK_DIR/es-secure/config' ES_JAVA_HOME='$JAVA_HOME' '$ES_HOME/bin/elasticsearch-$1' ${*:2}" \
    >/dev/null 2>&1
}

# API keys: Elasticsearch keeps them in the .security index, which this
# distribution cannot create (above), so nginx from Debian stands in for that
# one check: TLS with the test certificate on 127.0.0.1:9202,
# `Authorization: ApiKey <key>` compared with the stack's key (401
# otherwise), then proxied to the secured node over verified TLS as user
# logpipe (stack/elasticsearch/gateway.nginx). Everything else (TLS,
# authentication, roles) is Elasticsearch's own.
es_gateway_ready() {
  [ -f "$TLS_DIR/es-api-key" ] &&
    printf 'header = "Authorization: ApiKey %s"\n' "$(cat "$TLS_DIR/es-api-key")" |
    curl -K - -fsS -m 5 --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$ES_GATEWAY_PORT/_cluster/health" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}

# shellcheck disable=SC2034 # the template's variables, read by render
start_es_gateway() {
  if es_gateway_ready; then
    log "API-key gateway already answers on 127.0.0.1:$ES_GATEWAY_PORT: reusing it"
    return
  fi
  local ES_API_KEY ES_BASIC_AUTH
  (umask 077; printf '%s' "$(openssl rand -hex 12):$(openssl rand -hex 20)" | base64 -w0 >"$TLS_DIR/es-api-key")
  ES_API_KEY=$(cat "$TLS_DIR/es-api-key")
  ES_BASIC_AUTH=$(printf 'logpipe:%s' "$(cat "$TLS_DIR/es-logpipe.pass")" | base64 -w0)
  run_nginx "the API-key gateway on 127.0.0.1:$ES_GATEWAY_PORT" "$STACK_DIR/nginx" es_gateway_ready \
    "$ROOT/stack/elasticsearch/gateway.nginx"
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
    es_run "$STACK_DIR/es-secure-launcher.pid" "$d/config" "$d/es.pid" "$d/logs/stdout.log"
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

stop_es() {
  stop_pidfile Elasticsearch "$STACK_DIR/es-launcher.pid"
  if [ -f "$ES_HOME/es.pid" ]; then stop_pidfile Elasticsearch "$ES_HOME/es.pid"; fi
}
stop_es_secure() {
  stop_pidfile "API-key gateway" "$STACK_DIR/nginx/launcher.pid"
  stop_pidfile "secured Elasticsearch" "$STACK_DIR/es-secure-launcher.pid"
  if [ -f "$ES_SECURE_HOME/es.pid" ]; then stop_pidfile "secured Elasticsearch" "$ES_SECURE_HOME/es.pid"; fi
}

logs_es() { tail -n "$1" "$ES_HOME/logs/stdout.log"; }
logs_es_secure() { tail -n "$1" "$ES_SECURE_HOME/logs/stdout.log"; }

status_es() {
  if es_ready; then
    local v
    # The integ-test-zip has no rest-root module (GET / answers 405): ask _nodes.
    v=$(curl -fsS -m 3 "http://127.0.0.1:$ES_PORT/_nodes/_local?filter_path=nodes.*.version" |
        sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p')
    echo "elasticsearch  up    127.0.0.1:$ES_PORT  version $v  data $ES_DATA  log $ES_HOME/logs/stdout.log"
  else
    echo "elasticsearch  down  127.0.0.1:$ES_PORT"; return 1
  fi
}
status_es_secure() {
  if es_secure_ready; then
    echo "es-secure      up    https://127.0.0.1:$ES_SECURE_PORT  TLS (CA $TLS_DIR/ca.pem), user logpipe; API keys via https://127.0.0.1:$ES_GATEWAY_PORT"
  else
    echo "es-secure      down  https://127.0.0.1:$ES_SECURE_PORT"; return 1
  fi
}
