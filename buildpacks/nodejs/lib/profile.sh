# shellcheck shell=sh
# Written by Wharf's Node.js buildpack into .profile.d/nodejs.sh after lib/dyno_memory.sh,
# sourced when a dyno starts (with HOME set to the app's directory): the app's Node.js and tools
# on PATH, NODE_ENV=production unless the app sets it, and as Heroku's Node.js buildpack does,
# WEB_CONCURRENCY = the dyno's memory (at most 14 GB) / WEB_MEMORY (default 512 MB per
# process), from 1 to 200, unless the app sets WEB_CONCURRENCY.
export PATH="$HOME/.heroku/node/bin:$HOME/node_modules/.bin:$PATH"
export NODE_ENV="${NODE_ENV:-production}"

case "${WEB_MEMORY:-}" in
  '' | *[!0-9]* | 0) WEB_MEMORY=512 ;;
esac
if [ -z "${MEMORY_AVAILABLE:-}" ]; then
  MEMORY_AVAILABLE=$(wharf_dyno_memory_mb 512)
  if [ "$MEMORY_AVAILABLE" -gt 14336 ]; then
    MEMORY_AVAILABLE=14336
  fi
fi
export WEB_MEMORY MEMORY_AVAILABLE
if [ -z "${WEB_CONCURRENCY:-}" ]; then
  case "$MEMORY_AVAILABLE" in
    '' | *[!0-9]*) WEB_CONCURRENCY=1 ;;
    *) WEB_CONCURRENCY=$((MEMORY_AVAILABLE / WEB_MEMORY)) ;;
  esac
  if [ "$WEB_CONCURRENCY" -lt 1 ]; then
    WEB_CONCURRENCY=1
  elif [ "$WEB_CONCURRENCY" -gt 200 ]; then
    WEB_CONCURRENCY=200
  fi
  export WEB_CONCURRENCY
fi
