# aws.sh: the stack's local AWS, sourced by stack.sh: moto in server mode on
# 127.0.0.1:5000 (Secrets Manager, S3, IAM; signatures checked), seeded by
# seed_aws.py, and nginx with the test CA's certificate on 5443 in front of
# it (stack/aws/tls-front.nginx), so that clients reach it over https as
# they reach AWS. Its ports, probes, start, stop, status lines and log here.
# moto comes from PyPI, pinned, installed by deps.sh into .venv.

# shellcheck shell=bash
AWS_PORT=5000
AWS_TLS_PORT=5443
AWS_HOME=$STACK_DIR/aws

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

# shellcheck disable=SC2153 # KAFKA_PORT, ES_PORT: kafka.sh, elasticsearch.sh
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

# logpipe/local-secure follows the secured servers' current credentials.
seed_secure_secret() {
  "$ROOT/.venv/bin/python" "$ROOT/stack/seed_aws.py" secure "http://127.0.0.1:$AWS_PORT" "$AWS_HOME" \
    "127.0.0.1:$KAFKA_SASL_PORT" "https://127.0.0.1:$ES_GATEWAY_PORT" "$TLS_DIR" >"$AWS_HOME/seed-secure.log" 2>&1 ||
    die "writing the secret logpipe/local-secure failed: read $AWS_HOME/seed-secure.log"
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
  run_nginx "the local AWS's TLS front on 127.0.0.1:$AWS_TLS_PORT" "$STACK_DIR/nginx-aws" aws_tls_ready \
    "$ROOT/stack/aws/tls-front.nginx"
}

stop_aws() {
  stop_pidfile "the local AWS's TLS front" "$STACK_DIR/nginx-aws/launcher.pid"
  stop_pidfile "local AWS" "$AWS_HOME/moto.pid"
}

logs_aws() { tail -n "$1" "$AWS_HOME/moto.log"; }

# Two lines: moto, and the TLS front.
status_aws() {
  local rc=0
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
  return $rc
}
