#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine. Idempotent; safe to run every time.
#  - Rust components rustfmt and clippy;
#  - a Python venv with moto in server mode (the local AWS emulator of the tests and the demo),
#    outside the clone so CI and later runs reuse it;
#  - promtool, for the metrics and alert-rule checks.
set -euo pipefail

MOTO_VERSION="5.2.5"
VENV="${PIPELINE_RESPONDER_VENV:-/var/tmp/pipeline-responder-venv}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done

if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "setup: installing moto[server]==$MOTO_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
"$VENV/bin/moto_server" --help >/dev/null
# The tests' launcher (scripts/moto_server.py) patches these modules; fail here if they moved.
"$VENV/bin/python" -c "import moto.dynamodb.models.table, moto.dynamodb.responses, moto.server"

# promtool (Debian package `prometheus`) checks /metrics output and alert rules in the tests. Only
# the binary is unpacked (no service is installed or started), outside the clone.
TOOLS="${PIPELINE_RESPONDER_TOOLS:-/var/tmp/pipeline-responder-tools}"
if ! "$TOOLS/bin/promtool" --version >/dev/null 2>&1; then
  echo "setup: unpacking promtool from Debian's prometheus package into $TOOLS"
  work="$(mktemp -d)"
  (cd "$work" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; }; })
  dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
  mkdir -p "$TOOLS/bin"
  cp "$work/x/usr/bin/promtool" "$TOOLS/bin/promtool"
  rm -rf "$work"
fi
"$TOOLS/bin/promtool" --version >/dev/null

# cfn-lint (PyPI) and cfn-guard (crates.io) check deploy/cloudformation/ in the tests. cfn-lint goes
# into the same venv; cfn-guard is built once (minutes) into $TOOLS with its own target dir, so it
# neither waits on nor disturbs the project's build.
CFN_LINT_VERSION="1.58.0"
CFN_GUARD_VERSION="3.2.1"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('cfn-lint') != '$CFN_LINT_VERSION')" 2>/dev/null; then
  echo "setup: installing cfn-lint==$CFN_LINT_VERSION into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi
"$VENV/bin/cfn-lint" --version >/dev/null
if [ "$("$TOOLS/bin/cfn-guard" --version 2>/dev/null || true)" != "cfn-guard $CFN_GUARD_VERSION" ]; then
  echo "setup: building cfn-guard $CFN_GUARD_VERSION into $TOOLS (takes a few minutes, once)"
  CARGO_TARGET_DIR="$TOOLS/build" cargo install cfn-guard --version "$CFN_GUARD_VERSION" \
    --locked --force --root "$TOOLS"
  rm -rf "$TOOLS/build"
fi
"$TOOLS/bin/cfn-guard" --version >/dev/null

echo "setup: ok ($(cargo --version); moto $MOTO_VERSION in $VENV)"
