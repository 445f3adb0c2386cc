# shellcheck shell=sh
# Written by Wharf's Node.js buildpack into .profile.d/nodejs.sh, sourced when a dyno starts
# (with HOME set to the app's directory): the app's own tools on PATH and NODE_ENV=production
# unless the app sets it.
export PATH="$HOME/node_modules/.bin:$PATH"
export NODE_ENV="${NODE_ENV:-production}"
