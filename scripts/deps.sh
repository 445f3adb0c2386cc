#!/usr/bin/env bash
# Installs what building and running Wharf needs on Debian 12. Sourced by scripts/start and
# scripts/test; installs only what is missing, so it is quick on a prepared machine.
set -euo pipefail

# Installing packages and running containers needs root: a script sourcing this runs again
# through sudo when started as another user (a fresh Debian machine may have no sudo, and its
# user is root). The scripts that source this live in scripts/ and have changed to the
# repository's root.
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -- "$PWD/scripts/$(basename "$0")" "$@"
  fi
  echo "wharf: $0 needs root (it installs packages and runs containers): run it as root" >&2
  exit 1
fi

# apt_install PACKAGE...: installs the packages that are not installed yet.
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "wharf: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# The toolchain and the tools Wharf drives: git serves pushes.
apt_install ca-certificates curl git gcc libc6-dev pkg-config

# Rust: the distribution's rustc is too old for Wharf's dependencies, so use rustup's.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "wharf: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

# Containers: dynos and builds run under an OCI runtime (crun, else runc) with tini as PID 1;
# python3 runs the container tests' memory hog (and Python builds).
apt_install crun runc tini python3

# crun refuses a hybrid cgroup host (v1 controllers plus a cgroup2 mount) while the hugetlb
# controller sits on cgroup2: give hugetlb its own v1 hierarchy, once per boot, before any
# container starts. runc works without it.
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] \
  && grep -qw '^hugetlb' /proc/cgroups \
  && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  if mkdir -p /sys/fs/cgroup/hugetlb \
    && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; then
    echo "wharf: mounted the hugetlb cgroup (v1) for crun"
  else
    echo "wharf: could not mount the hugetlb cgroup: containers will use runc, not crun" >&2
  fi
fi

# The stack: what apps build and run with (the host's /usr, read-only in every container).
# The debian-13 stack is a root filesystem of its own that Wharf makes with debootstrap on its
# first use.
apt_install python3-venv debootstrap
command -v node >/dev/null 2>&1 || apt_install nodejs
command -v npm >/dev/null 2>&1 || apt_install npm
# Ruby apps build and run with the stack's Ruby and Bundler; the -dev packages are the headers
# gems' native extensions compile against (pg, psych, zlib, ffi).
apt_install ruby ruby-dev bundler libpq-dev libyaml-dev zlib1g-dev libffi-dev

# Test-only: Debian's gems that the Ruby fixture apps (buildpacks/test/fixtures/ruby-*) lock to,
# since rubygems.org is not reachable from the tests. The stack is the host's /usr, so every
# gem installed here is visible to every app on this machine (Bundler uses one when an app's
# Gemfile.lock pins that exact version).
apt_install ruby-rails puma ruby-sidekiq ruby-redis ruby-pg ruby-sinatra ruby-rack

# Log drain tests run a real rsyslog (as a child process of the test, with its own config),
# it and their other receivers in a network namespace the test makes with `ip`; the many-host
# test starts its agents there with `nsenter` (util-linux) and waits on them with `pgrep`
# (procps).
apt_install rsyslog iproute2 procps util-linux

# The dyno network's firewall: an nftables table of Wharf's own (`nft`).
apt_install nftables

# Disk caps: each dyno's and build's disk is an ext4 image in the disk pool, loop-mounted
# (mkfs.ext4, e2fsck and resize2fs from e2fsprogs; mount and losetup from mount).
apt_install e2fsprogs mount

# Add-ons: Wharf runs a PostgreSQL cluster (under its data dir) and a redis-server per add-on
# itself, as the `postgres` and `redis` users these packages create; psql and redis-cli are in
# the stack for `pg:psql` and `redis:cli`. (The packages' own default servers are not used.)
apt_install postgresql redis-server postgresql-client redis-tools
