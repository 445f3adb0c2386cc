# shellcheck shell=sh
# Written by Wharf's Python buildpack into .profile.d/python.sh (after lib/dyno_memory.sh),
# sourced when a dyno starts (with HOME set to the app's directory): the app's Python first on
# PATH, unbuffered output for the logs, and WEB_CONCURRENCY sized as Heroku's Python buildpack
# does unless the app sets it: up to 512 MB of memory 2, up to 1 GB 4, more than that two
# workers per CPU plus one (Heroku: Performance-M 5, Performance-L 17, Performance-2XL 33).
export PATH="$HOME/.heroku/python/bin:$PATH"
export PYTHONUNBUFFERED="${PYTHONUNBUFFERED:-1}"
unset PYTHONHOME

# The dyno's CPUs: its cgroup's cpu.max quota (rounded up), else the CPUs it may run on.
# WHARF_CGROUP_DIR only lets tests stand in for the kernel's files.
wharf_dyno_cpus() {
  _wharf_cpus=""
  if [ -r "${WHARF_CGROUP_DIR:-/sys/fs/cgroup}/cpu.max" ]; then
    read -r _wharf_quota _wharf_period <"${WHARF_CGROUP_DIR:-/sys/fs/cgroup}/cpu.max" || true
    case "$_wharf_quota$_wharf_period" in
      '' | *[!0-9]*) ;;
      *) [ "${#_wharf_quota}" -le 15 ] && [ "$_wharf_period" -gt 0 ] &&
        _wharf_cpus=$(((_wharf_quota + _wharf_period - 1) / _wharf_period)) ;;
    esac
  fi
  if [ -z "$_wharf_cpus" ] || [ "$_wharf_cpus" -lt 1 ]; then
    _wharf_cpus=$(nproc 2>/dev/null || echo 1)
  fi
  echo "$_wharf_cpus"
  unset _wharf_cpus _wharf_quota _wharf_period
}

if [ -z "${WEB_CONCURRENCY:-}" ]; then
  # No memory limit counts as the smallest dyno.
  _wharf_mb=$(wharf_dyno_memory_mb 512)
  if [ "$_wharf_mb" -le 512 ]; then
    WEB_CONCURRENCY=2
  elif [ "$_wharf_mb" -le 1024 ]; then
    WEB_CONCURRENCY=4
  else
    WEB_CONCURRENCY=$(($(wharf_dyno_cpus) * 2 + 1))
  fi
  export WEB_CONCURRENCY
  unset _wharf_mb
fi
