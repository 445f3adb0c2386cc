#!/usr/bin/env bash
# Dyno benchmarks (run as root on a prepared host, see scripts/deps.sh): a dyno's start to exec
# against a bare spawn and a bare runtime run, a web dyno to its first HTTP 200 against the app
# started bare, scaling web 1 -> 10, and the platform's memory per running dyno with 1, 10 and
# 50 dynos, supervised by a foreground runtime process against their holders (wharf-shim).
# Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --quiet --release -p wharf --bin wharf-shim
cargo run --quiet --release -p wharf-dynos --example dyno_bench
exec cargo run --quiet --release -p wharf-dynos --example memory_bench -- "$PWD/target/release/wharf-shim"
