#!/usr/bin/env bash
# Local demo. Until the daemon runtime lands (issue 3: moto + fakes + the real `run`), this plays
# the runbook scenario through the offline rule engine: a build failure in production, a rollback
# in staging, and the recovery, printing what the daemon decides for each event.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/pipeline-responder-target}"
cargo build --quiet --locked -p pipeline-responder
bin="$CARGO_TARGET_DIR/debug/pipeline-responder"
config=config/local.toml
events=examples/events

"$bin" --config "$config" check-config

show() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
line = [d.get("outcome", "?")]
for k in ("type", "severity", "environment", "key"):
    if d.get(k): line.append(f"{k}={d[k]}")
if d.get("resolves"): line.append("resolves=" + ",".join(d["resolves"]))
if d.get("reason"): line.append("reason: " + d["reason"])
print("   " + " · ".join(line))
for s in d.get("escalation_schedule") or []:
    print("     escalates to", s["level_id"], "at", s["at"], "unless", s["until"])
for n in d.get("notifications") or []:
    ch = n["channel"]
    print("     notify", ch.get("channel") or ch.get("topic_arn"), n.get("mention") or "")
'
}

echo
echo "1. production: BuildAndTest fails (npm test)"
"$bin" --config "$config" explain "$events/1-production-build-action-failed.json" | show
echo "2. production: the pipeline FAILED event for the same execution (joins, no second incident)"
"$bin" --config "$config" explain "$events/2-production-pipeline-failed.json" \
  --incidents "$events/open-production-failure.incidents.json" | show
echo "3. staging: the rollback Lambda's \"Rollback Initiated\" message, through SNS"
"$bin" --config "$config" explain "$events/3-staging-rollback-initiated.sns.json" | show
echo "4. production: a later execution succeeds (recovery)"
"$bin" --config "$config" explain "$events/4-production-pipeline-succeeded.json" \
  --incidents "$events/open-production-failure.incidents.json" | show
