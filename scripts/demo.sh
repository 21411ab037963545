#!/usr/bin/env bash
# Local demo (README's main command): moto and the project's fakes, the runbook's resources,
# the REAL daemon against them, and a scenario — a build failure in production, a rollback in
# staging, the recovery — with the Slack posts and SNS messages printed as they arrive.
# Needs only what scripts/setup.sh installs. No AWS account, no internet.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pipeline-responder-target}"
bash scripts/setup.sh
cargo build --quiet --locked -p pipeline-responder -p pipeline-responder-e2e --bins
"$CARGO_TARGET_DIR/debug/pipeline-responder" --config config/local.toml check-config
exec "$CARGO_TARGET_DIR/debug/demo" \
  --daemon "$CARGO_TARGET_DIR/debug/pipeline-responder" \
  --config config/local.toml "$@"
