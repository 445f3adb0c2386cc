# shellcheck shell=sh
# The dyno's memory quota, shared by Wharf's built-in buildpacks: each buildpack gets a copy at
# lib/dyno_memory.sh and puts it in front of its .profile.d script, which sizes
# WEB_CONCURRENCY from it when a dyno starts. POSIX sh: dynos source .profile.d with any shell.

# _wharf_bytes FILE: the number in FILE, or nothing when it is absent, not a number, or no
# limit ("max", or cgroup v1's number near 2^63: anything past 1 PB, which would also overflow
# the shell's arithmetic).
_wharf_bytes() {
  _wharf_value=""
  [ -r "$1" ] && _wharf_value=$(cat "$1" 2>/dev/null)
  case "$_wharf_value" in
    '' | *[!0-9]*) _wharf_value="" ;;
  esac
  if [ -n "$_wharf_value" ] && [ "${#_wharf_value}" -le 15 ] && [ "$_wharf_value" -gt 0 ]; then
    echo "$_wharf_value"
  fi
  unset _wharf_value
}

# wharf_dyno_memory_mb DEFAULT_MB: prints the dyno's memory quota in MB, read from its own
# cgroup: the size's quota is the cgroup's soft limit (v2 memory.low, v1
# memory/memory.soft_limit_in_bytes; Wharf's hard limit above it is where R15 kills), else
# the hard limit (v2 memory.max, v1 memory/memory.limit_in_bytes), else DEFAULT_MB when there
# is no limit or it cannot be read. WHARF_CGROUP_DIR only lets tests stand in for the kernel's
# files.
wharf_dyno_memory_mb() {
  _wharf_cgroup="${WHARF_CGROUP_DIR:-/sys/fs/cgroup}"
  if [ -e "$_wharf_cgroup/memory.max" ]; then
    _wharf_limit=$(_wharf_bytes "$_wharf_cgroup/memory.max")
    _wharf_quota=$(_wharf_bytes "$_wharf_cgroup/memory.low")
  else
    _wharf_limit=$(_wharf_bytes "$_wharf_cgroup/memory/memory.limit_in_bytes")
    _wharf_quota=$(_wharf_bytes "$_wharf_cgroup/memory/memory.soft_limit_in_bytes")
  fi
  if [ -n "$_wharf_quota" ] && { [ -z "$_wharf_limit" ] || [ "$_wharf_quota" -lt "$_wharf_limit" ]; }; then
    _wharf_limit=$_wharf_quota
  fi
  if [ -n "$_wharf_limit" ] && [ "$_wharf_limit" -ge 1048576 ]; then
    echo $((_wharf_limit / 1048576))
  else
    echo "$1"
  fi
  unset _wharf_cgroup _wharf_limit _wharf_quota
}
