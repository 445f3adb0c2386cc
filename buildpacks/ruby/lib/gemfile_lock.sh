# shellcheck shell=bash
# Reading Gemfile.lock as text (nothing of the app runs): which gems the app's bundle holds.

# locked_version LOCKFILE GEM: the version of GEM in the lockfile's specs ("6.1.7.10"), or
# nothing (status 1) when the bundle does not hold it.
locked_version() {
  local lockfile=$1 gem=$2
  [ -f "$lockfile" ] || return 1
  # Specs are indented by four spaces: "    railties (6.1.7.10)"; platform gems add "-x86_64-linux".
  head -c 5000000 "$lockfile" | sed -nE "s/^    ${gem//./\\.} \\(([0-9][^ )-]*)(-[^ )]*)?\\)\$/\\1/p" | head -n 1 | grep .
}

# rails_app BUILD_DIR: a Rails app (config/application.rb, or railties in the bundle).
rails_app() {
  [ -f "$1/config/application.rb" ] || locked_version "$1/Gemfile.lock" railties >/dev/null
}
