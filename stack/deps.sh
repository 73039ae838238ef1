#!/usr/bin/env bash
# Installs what building and testing logpipe needs on a fresh Debian machine:
# the C toolchain and libraries from Debian, the Python test harness in a
# project venv (.venv) and the local Airflow in another (.venv-airflow).
# Idempotent and quiet when everything is present, so `make test` and
# `make demo` can call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build pkg-config
              librdkafka-dev libcurl4-openssl-dev libjansson-dev libdeflate-dev zlib1g-dev libmicrohttpd-dev
              clang kafkacat curl unzip openjdk-17-jre-headless maven python3-venv
              valgrind time libpcre2-dev libssl-dev nginx zip shellcheck)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "deps: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps: installing Python packages from tests/requirements.txt"
  .venv/bin/pip install -q -r tests/requirements.txt
  echo "$want" > "$stamp"
fi

# The local Airflow lives in its own venv: its ~160 pinned packages
# (airflow/requirements-local.txt) would otherwise fight the test harness's.
if [ ! -x .venv-airflow/bin/python ]; then
  echo "deps: creating .venv-airflow"
  python3 -m venv .venv-airflow
fi
stamp=.venv-airflow/.requirements.sha
want=$(sha256sum airflow/requirements-local.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps: installing Airflow from airflow/requirements-local.txt (about a minute)"
  .venv-airflow/bin/pip install -q --disable-pip-version-check -r airflow/requirements-local.txt
  echo "$want" > "$stamp"
fi
