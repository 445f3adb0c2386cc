# shellcheck shell=bash
# The nodejs buildpack's tests, sourced by buildpacks/test/run.

test_nodejs_lockfile_and_build() {
  local app
  app=$(new_app nodejs-express-less nodejs-express-less)
  check "detected as Node.js" test "$(detected "$app")" = Node.js
  compile nodejs nodejs-express-less
  check "compile succeeds" test "$STATUS" = 0
  check "installs with npm ci" output_has "-----> Installing dependencies with npm ci"
  check "engines.node is satisfied" output_has "       package.json asks for Node.js >=18: satisfied"
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
  "engines": {"node": ">=99"},
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
  check "engines.node not met is a warning naming both versions" \
    grep -qE "^ !     Warning: package.json asks for Node.js \">=99\" \(engines.node\), but this stack provides Node.js $(node --version | tr -d v)\.$" "$LOG"
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

tests+=(
  test_nodejs_lockfile_and_build
  test_nodejs_without_lockfile
  test_nodejs_errors
)
