#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine. Idempotent; safe to run every time.
# Today: the Rust toolchain's fmt/clippy components. The emulator venv (moto) and Debian tools
# (promtool, cfn-lint) join here as the issues that need them land.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done
echo "setup: ok ($(cargo --version))"
