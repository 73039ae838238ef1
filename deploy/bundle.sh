#!/usr/bin/env bash
# bundle.sh: builds the folder that AWS MWAA reads from its S3 bucket:
#
#   dags/logpipe/      the DAG files only, in a folder of their own (a shared
#                      bucket's dags/ holds other teams' DAGs too)
#   plugins.zip        the Airflow plugin (operators) + a logpipe binary that
#                      runs on MWAA's workers, with the shared libraries it
#                      needs beside it in lib/
#   requirements.txt   what the DAGs need on MWAA, with Airflow's constraints
#                      for the target Airflow version and its image's Python
#
# Portability (docs/deploy.md): MWAA's workers run Amazon Linux 2023, glibc
# 2.34, x86_64. The binary is built here with RPATH $ORIGIN/lib (DT_RPATH, so
# it also applies to the libraries' own dependencies) and every shared library
# that is not glibc's is carried in lib/. Debian 12 has no static krb5, LDAP or
# SASL libraries for libcurl and librdkafka, so a fully static binary is not an
# option from Debian packages. The script fails if the binary or any carried
# library needs a glibc symbol newer than GLIBC_MAX.
#
#   deploy/bundle.sh [OUT]     (default build-bundle/mwaa; `make bundle`)
#   AIRFLOW_VERSION=2.10.3 deploy/bundle.sh   (`make bundle AIRFLOW_VERSION=2.10.3`)
#
# AIRFLOW_VERSION is the MWAA environment's (default: the Airflow the DAGs
# are tested with, airflow/requirements.in); the Python of MWAA's image for
# it comes from deploy/mwaa-python.tsv, and with it the constraints file.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-bundle/mwaa}
BUILD=$ROOT/build-bundle/cmake
GLIBC_MAX=${GLIBC_MAX:-2.34}

die() { printf 'bundle: error: %s\n' "$*" >&2; exit 1; }

AIRFLOW_VERSION=${AIRFLOW_VERSION:-$(sed -n 's/^apache-airflow==//p' "$ROOT/airflow/requirements.in")}
PYTHON_VERSION=$(awk -F '\t' -v v="$AIRFLOW_VERSION" '!/^#/ && $1 == v {print $2}' "$ROOT/deploy/mwaa-python.tsv")
[ -n "$PYTHON_VERSION" ] ||
  die "AIRFLOW_VERSION=$AIRFLOW_VERSION is not an MWAA version of deploy/mwaa-python.tsv ($(awk -F '\t' '!/^#/ {print $1}' "$ROOT/deploy/mwaa-python.tsv" | paste -sd ' '))"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_BUILD_RPATH='$ORIGIN/lib' -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags >/dev/null
cmake --build "$BUILD" --target logpipe >/dev/null

rm -rf "$OUT" "$OUT.plugins"
mkdir -p "$OUT/dags/logpipe" "$OUT.plugins/lib"
stage=$OUT.plugins

# glibc's own libraries are on every Linux: never carried.
is_glibc() {
  case $1 in
    linux-vdso.so.*|ld-linux-x86-64.so.*|libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|\
    libresolv.so.*|libutil.so.*|libanl.so.*|libnsl.so.*|libcrypt.so.*) return 0 ;;
  esac
  return 1
}

cp "$BUILD/logpipe" "$stage/logpipe"
strip --strip-unneeded "$stage/logpipe"
ldd "$BUILD/logpipe" | awk '/=> \//{print $1, $3}' | while read -r name path; do
  is_glibc "$name" && continue
  cp -L "$path" "$stage/lib/$name"
  chmod 644 "$stage/lib/$name"
done

# The newest glibc symbol version anything in the bundle asks for.
newest=$(for f in "$stage/logpipe" "$stage"/lib/*; do objdump -T "$f"; done |
         grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_MAX" | sort -V | tail -n 1)" != "$GLIBC_MAX" ]; then
  for f in "$stage/logpipe" "$stage"/lib/*; do
    objdump -T "$f" | grep -E "GLIBC_$newest" | sed "s|^|$(basename "$f"): |" >&2 || true
  done
  die "the bundle needs GLIBC_$newest, newer than MWAA's $GLIBC_MAX (symbols above)"
fi

cp -r "$ROOT/airflow/plugins/logpipe_airflow" "$ROOT/airflow/plugins/logpipe_plugin.py" "$stage/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$OUT/plugins.zip"
# Fixed timestamps and order: an unchanged bundle gives a byte-identical zip,
# so deploy.sh can tell when plugins.zip really changed.
find "$stage" -exec touch -h -d '2020-01-01T00:00:00Z' {} +
(cd "$stage" && find . -type f -o -type l | LC_ALL=C sort | zip -q -X -D -@ "$OUT/plugins.zip")
rm -rf "$stage"

cp "$ROOT"/airflow/dags/*.py "$OUT/dags/logpipe/"
cat > "$OUT/requirements.txt" <<REQ
# logpipe's DAGs on MWAA (Airflow $AIRFLOW_VERSION, whose image runs Python $PYTHON_VERSION). The
# Amazon and standard providers and requests come with MWAA's image; the
# constraints keep pip from upgrading what Airflow pins and choose the
# version of confluent-kafka (the reconcile task's): a pin of our own could
# contradict them, and MWAA's pip would then refuse the whole file.
--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-$AIRFLOW_VERSION/constraints-$PYTHON_VERSION.txt"
confluent-kafka
REQ
printf 'bundle: %s for Airflow %s, Python %s (newest glibc symbol: GLIBC_%s, limit %s)\n' "$OUT" \
  "$AIRFLOW_VERSION" "$PYTHON_VERSION" "$newest" "$GLIBC_MAX"
