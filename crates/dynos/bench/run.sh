#!/usr/bin/env bash
# Dyno benchmark (run as root on a prepared host, see scripts/deps.sh): a dyno's start to exec
# against a bare spawn and a bare runtime run, a web dyno to its first HTTP 200 against the app
# started bare, scaling web 1 -> 10, and the platform's memory per running dyno. Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec cargo run --quiet --release -p wharf-dynos --example dyno_bench
