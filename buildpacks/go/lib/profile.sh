# shellcheck shell=sh
# Written by Wharf's Go buildpack into .profile.d/go.sh, sourced when a dyno starts (with HOME
# set to the app's directory): the app's binaries on PATH. Go reads the dyno's CPU and memory
# limits itself (GOMAXPROCS from the cgroup since Go 1.25), so nothing else is set, as on Heroku.
export PATH="$HOME/bin:$PATH"
