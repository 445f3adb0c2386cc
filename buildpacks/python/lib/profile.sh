# shellcheck shell=sh
# Written by Wharf's Python buildpack into .profile.d/python.sh, sourced when a dyno starts
# (with HOME set to the app's directory): the app's virtualenv first on PATH, unbuffered
# output for the logs, and WEB_CONCURRENCY sized from the dyno's memory limit, like Heroku's
# gunicorn defaults, unless the app sets it.
export PATH="$HOME/.heroku/python/bin:$PATH"
export PYTHONUNBUFFERED="${PYTHONUNBUFFERED:-1}"
unset PYTHONHOME

if [ -z "${WEB_CONCURRENCY:-}" ]; then
  # WHARF_CGROUP_DIR only lets tests stand in for the kernel's files.
  _wharf_cgroup="${WHARF_CGROUP_DIR:-/sys/fs/cgroup}"
  _wharf_limit=""
  if [ -r "$_wharf_cgroup/memory.max" ]; then
    _wharf_limit=$(cat "$_wharf_cgroup/memory.max")
  elif [ -r "$_wharf_cgroup/memory/memory.limit_in_bytes" ]; then
    _wharf_limit=$(cat "$_wharf_cgroup/memory/memory.limit_in_bytes")
  fi
  # "max" (cgroup v2) or a huge number (v1) means no limit: size for the smallest dyno.
  case "$_wharf_limit" in
    '' | *[!0-9]*) _wharf_limit=536870912 ;;
  esac
  if [ "${#_wharf_limit}" -gt 15 ]; then
    _wharf_limit=536870912
  fi
  _wharf_mb=$((_wharf_limit / 1048576))
  if [ "$_wharf_mb" -gt 1048576 ]; then
    _wharf_mb=512
  fi
  if [ "$_wharf_mb" -le 512 ]; then
    WEB_CONCURRENCY=2
  elif [ "$_wharf_mb" -le 1024 ]; then
    WEB_CONCURRENCY=4
  else
    WEB_CONCURRENCY=8
  fi
  export WEB_CONCURRENCY
  unset _wharf_cgroup _wharf_limit _wharf_mb
fi
