# shellcheck shell=sh
# The dyno's memory limit, shared by Wharf's built-in buildpacks: each buildpack gets a copy at
# lib/dyno_memory.sh and puts it in front of its .profile.d script, which sizes
# WEB_CONCURRENCY from it when a dyno starts. POSIX sh: dynos source .profile.d with any shell.

# wharf_dyno_memory_mb DEFAULT_MB: prints the memory limit of the dyno's cgroup in MB, read
# from the dyno's own cgroup (cgroup v2 memory.max, else cgroup v1
# memory/memory.limit_in_bytes), or DEFAULT_MB when there is no limit ("max", or v1's huge
# number) or it cannot be read. WHARF_CGROUP_DIR only lets tests stand in for the kernel's files.
wharf_dyno_memory_mb() {
  _wharf_cgroup="${WHARF_CGROUP_DIR:-/sys/fs/cgroup}"
  _wharf_limit=""
  if [ -r "$_wharf_cgroup/memory.max" ]; then
    _wharf_limit=$(cat "$_wharf_cgroup/memory.max" 2>/dev/null)
  elif [ -r "$_wharf_cgroup/memory/memory.limit_in_bytes" ]; then
    _wharf_limit=$(cat "$_wharf_cgroup/memory/memory.limit_in_bytes" 2>/dev/null)
  fi
  case "$_wharf_limit" in
    '' | *[!0-9]*) _wharf_limit="" ;;
  esac
  # v1 says "unlimited" with a number near 2^63; anything past 1 PB is no limit either (and
  # more digits than that would overflow the shell's arithmetic).
  if [ -n "$_wharf_limit" ] && [ "${#_wharf_limit}" -gt 15 ]; then
    _wharf_limit=""
  fi
  if [ -n "$_wharf_limit" ] && [ "$_wharf_limit" -ge 1048576 ]; then
    echo $((_wharf_limit / 1048576))
  else
    echo "$1"
  fi
  unset _wharf_cgroup _wharf_limit
}
