#!/usr/bin/env bash
# Start-up benchmark for Wharf's containers (run as root on a prepared host, see scripts/deps.sh):
# median time to first output of a plain fork/exec, bare `crun run`/`runc run`, and Runtime::run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec cargo run --quiet --release -p wharf-containers --example start_bench
