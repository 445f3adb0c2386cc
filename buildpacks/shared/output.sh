# shellcheck shell=bash
# Heroku-style build output and config vars, shared by Wharf's built-in buildpacks. There is
# one source; each installed buildpack gets its own copy at lib/output.sh (crates/build/build.rs
# embeds it so, and buildpacks/test/run copies it so), so that it stands alone like a
# third-party one.

# A heading: "-----> Installing requirements with pip".
topic() {
  echo "-----> $*"
}

# A detail line under a heading.
info() {
  echo "       $*"
}

# Indents a command's output as detail lines, line by line as it arrives.
indent() {
  sed -u 's/^/       /'
}

# A warning: the build goes on.
warning() {
  local line
  for line in "$@"; do
    echo " !     $line"
  done
}

# An error that fails the build: each argument is a line; say what to do in the last one.
error() {
  local line
  for line in "$@"; do
    echo " !     $line" >&2
  done
  exit 1
}

# Config vars that must not leak into the build: they would redirect the build's own tools
# (Heroku keeps the same list out of builds).
ENV_DIR_BLOCKLIST='^(PATH|GIT_DIR|CPATH|CPLUS_INCLUDE_PATH|C_INCLUDE_PATH|LIBRARY_PATH|LD_PRELOAD|LD_LIBRARY_PATH|PYTHONHOME|BUILDPACK_URL)$'

# Exports the app's config vars from ENV_DIR (one file per var) except the blocklisted ones.
export_env_dir() {
  local env_dir=$1 file name
  [ -n "$env_dir" ] && [ -d "$env_dir" ] || return 0
  for file in "$env_dir"/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file")
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [[ $name =~ $ENV_DIR_BLOCKLIST ]] && continue
    export "$name=$(cat "$file")"
  done
}

# Writes the `export` file next to bin/ that later buildpacks source (stdin is its text). A
# buildpack directory mounted read-only only loses that hand-over, not the build.
write_export() {
  local bp_dir=$1
  cat >"$bp_dir/export" 2>/dev/null || true
}
