#!/usr/bin/env bash
# The test command (README.md): every test of the workspace, against the locked dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pipeline-responder-target}"
bash scripts/setup.sh >/dev/null
cargo test --workspace --locked "$@"
