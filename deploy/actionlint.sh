#!/usr/bin/env bash
# actionlint.sh: lints .github/workflows with actionlint, installed once from
# the Go module proxy into .cache/bin (needs a Go toolchain on PATH or in
# /usr/local/go; GitHub's ci job gets one from actions/setup-go).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=v1.7.12
BIN=$ROOT/.cache/bin/actionlint-$VERSION
if [ ! -x "$BIN" ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$GO" ] || { echo "actionlint: no Go toolchain to install actionlint $VERSION with" >&2; exit 1; }
  mkdir -p "$ROOT/.cache/bin"
  GOBIN=$(mktemp -d) && GOBIN=$GOBIN "$GO" install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION" &&
    mv "$GOBIN/actionlint" "$BIN"
fi
cd "$ROOT"
"$BIN" -no-color .github/workflows/*.yml
echo "actionlint $VERSION: .github/workflows clean"
