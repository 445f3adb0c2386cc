# shellcheck shell=bash
# shellcheck disable=SC2034 # the GOMOD_* variables are read by the scripts that source this file
# Reads the directives of an app's go.mod that the Go buildpack needs, for bin/runtime (which
# runs with the shared runtime cache writable) and bin/compile. go.mod is tenant data: it is
# read only when it is a regular file (never through a symlink) of bounded size, and every
# value taken from it is checked against a strict pattern before use.

# The largest go.mod read (real ones are a few KiB even with hundreds of requirements).
GOMOD_MAX_BYTES=1048576

# Set by gomod_parse:
GOMOD_MODULE=""          # the module path ("example.com/hello")
GOMOD_GO=""              # the go line's version ("1.22", "1.22.3")
GOMOD_TOOLCHAIN=""       # the toolchain line's name ("go1.22.5")
GOMOD_HEROKU_VERSION=""  # "// +heroku goVersion go1.22"
GOMOD_HEROKU_INSTALL=()  # "// +heroku install ./cmd/... ./tools/x": the packages to install

# gomod_parse BUILD_DIR: reads BUILD_DIR/go.mod into the GOMOD_* variables; fails the build
# with a clear error when it cannot be read safely.
gomod_parse() {
  local file="$1/go.mod" size text line rest
  if [ -L "$file" ]; then
    error "go.mod is a symbolic link: commit go.mod itself, not a link to it, and push again."
  fi
  if [ ! -f "$file" ]; then
    error "go.mod is not a regular file. Commit the module's go.mod at the app's root."
  fi
  size=$(stat -c %s -- "$file")
  if [ "$size" -gt "$GOMOD_MAX_BYTES" ]; then
    error "go.mod is $size bytes, more than the $GOMOD_MAX_BYTES this buildpack reads." \
      "Commit the module's real go.mod and push again."
  fi
  text=$(head -c "$GOMOD_MAX_BYTES" -- "$file" | tr -d '\r')
  while IFS= read -r line; do
    # Leading blanks never matter; the +heroku comments are recognized before comments go.
    line="${line#"${line%%[![:space:]]*}"}"
    if [[ $line =~ ^//[[:space:]]*\+heroku[[:space:]]+goVersion[[:space:]]*(.*)$ ]]; then
      rest=${BASH_REMATCH[1]}
      GOMOD_HEROKU_VERSION=${rest%"${rest##*[![:space:]]}"}
      [ -n "$GOMOD_HEROKU_VERSION" ] || GOMOD_HEROKU_VERSION="(nothing)"
      continue
    fi
    if [[ $line =~ ^//[[:space:]]*\+heroku[[:space:]]+install[[:space:]]+(.*)$ ]]; then
      read -r -a GOMOD_HEROKU_INSTALL <<<"${BASH_REMATCH[1]}"
      continue
    fi
    line=${line%%//*}
    if [[ $line =~ ^module[[:space:]]+\"?([^\"[:space:]]+)\"?[[:space:]]*$ ]]; then
      GOMOD_MODULE=${BASH_REMATCH[1]}
    elif [[ $line =~ ^go([[:space:]]+(.*))?$ ]]; then
      rest=${BASH_REMATCH[2]}
      GOMOD_GO=${rest%"${rest##*[![:space:]]}"}
      [ -n "$GOMOD_GO" ] || GOMOD_GO="(nothing)"
    elif [[ $line =~ ^toolchain([[:space:]]+(.*))?$ ]]; then
      rest=${BASH_REMATCH[2]}
      GOMOD_TOOLCHAIN=${rest%"${rest##*[![:space:]]}"}
      [ -n "$GOMOD_TOOLCHAIN" ] || GOMOD_TOOLCHAIN="(nothing)"
    fi
  done <<<"$text"
}

# gomod_binary_name MODULE: the name `go install` gives the module root's binary: the path's
# last element, or the one before a major version suffix ("example.com/hello/v2" → hello).
# Prints nothing for a name that is not a plain file name.
gomod_binary_name() {
  local module=$1 name
  name=${module##*/}
  if [[ $name =~ ^v[0-9]+$ ]] && [[ $module == */* ]]; then
    module=${module%/*}
    name=${module##*/}
  fi
  if [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
    echo "$name"
  fi
}
