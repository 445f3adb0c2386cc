# shellcheck shell=bash
# The python buildpack's tests, sourced by buildpacks/test/run.

test_python_flask() {
  local app
  app=$(new_app python-flask python-flask)
  check "detected as Python" test "$(detected "$app")" = Python
  compile python python-flask
  check "compile succeeds" test "$STATUS" = 0
  check "says it installs with pip" output_has "-----> Installing requirements with pip"
  check "pip's output is indented" grep -qE '^       .*(Successfully installed|Requirement already satisfied)' "$LOG"
  check "gunicorn is in the virtualenv" test -x "$app/.heroku/python/bin/gunicorn"
  check "the virtualenv uses the stack's Python" grep -q "home = /usr/bin" "$app/.heroku/python/pyvenv.cfg"
  # pip's own cache (PIP_CACHE_DIR=CACHE_DIR/pip) fills only when the registry's answers may be
  # cached, which depends on the network; the kept virtualenv does not.
  check "the virtualenv is kept in CACHE_DIR" test -x "$WORK/cache/python-flask/virtualenv/python/bin/gunicorn"
  check ".profile.d/python.sh is written" test -f "$app/.profile.d/python.sh"
  check "the export file is written for later buildpacks" grep -q ".heroku/python/bin" "$BUILDPACKS/python/export"
  expect_release python python-flask $'---\naddons: []'
  serves python-flask "$(sed -n 's/^web: //p' "$app/Procfile")" "Hello from python-flask on Wharf (WEB_CONCURRENCY="

  # A second build of the same app reuses the cache: nothing is downloaded again.
  app=$(new_app python-flask python-flask)
  compile python python-flask
  check "a rebuild succeeds" test "$STATUS" = 0
  check "a rebuild reuses the virtualenv" output_has "       Reusing the virtualenv of the last build"
  check "a rebuild downloads nothing" bash -c "! grep -q 'Downloading' '$LOG'"
  check "the reused virtualenv runs" "$app/.heroku/python/bin/python" -c 'import flask'

  # Changed requirements make a fresh virtualenv: a package removed from them is gone.
  app=$(new_app python-flask python-flask)
  echo "gunicorn==22.0.0" >"$app/requirements.txt"
  compile python python-flask
  check "a build with changed requirements succeeds" test "$STATUS" = 0
  check "it makes a fresh virtualenv" output_has "       Creating a virtualenv at .heroku/python"
  check "without the removed package" bash -c "! '$app/.heroku/python/bin/python' -c 'import flask'"
}

test_python_pyproject() {
  local app
  app=$(new_app python-pyproject)
  cat >"$app/pyproject.toml" <<'EOF'
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "hello-pyproject"
version = "1.0.0"

[tool.setuptools]
py-modules = ["hello_pyproject"]
EOF
  echo 'GREETING = "hello from pyproject"' >"$app/hello_pyproject.py"
  check "detected as Python" test "$(detected "$app")" = Python
  compile python python-pyproject
  check "compile succeeds" test "$STATUS" = 0
  check "installs the package with pip install ." output_has "-----> Installing the app's package with pip install ."
  check "the package is installed" "$app/.heroku/python/bin/python" -c 'import hello_pyproject'
  expect_release python python-pyproject $'---\naddons: []'
}

# The local Python mirror (buildpacks/test/python-mirror.sh: a CPython built from Debian's
# source once per machine) served on loopback; sets PYTHON_MIRROR_URL. The first call builds
# or finds it and starts the server; later calls reuse them.
PYTHON_MIRROR_URL=""
python_mirror() {
  local dir port pid deadline
  [ -n "$PYTHON_MIRROR_URL" ] && return 0
  dir=$("$TEST_DIR/python-mirror.sh" "${WHARF_TEST_PYTHON_MIRROR:-/var/cache/wharf-tests/python-mirror}" | tail -n 1)
  port=$(free_port)
  setsid /usr/bin/python3 -I -m http.server --bind 127.0.0.1 --directory "$dir" "$port" >"$WORK/python-mirror.log" 2>&1 &
  pid=$!
  STARTED_PIDS+=("$pid")
  deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/download-metadata.json" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "the Python mirror did not start" >&2
      return 1
    fi
    sleep 0.2
  done
  PYTHON_MIRROR_URL="http://127.0.0.1:$port"
}

# The version the mirror offers (the one python-mirror.sh builds).
MIRROR_PYTHON=3.13.5

# compile_with_mirror BUILDPACK NAME: compile with the server's WHARF_PYTHON_MIRROR set.
compile_with_mirror() {
  local RUNTIME_ENV=("${RUNTIME_ENV[@]}" "WHARF_PYTHON_MIRROR=$PYTHON_MIRROR_URL")
  compile "$@"
}

test_python_versions() {
  local app
  python_mirror
  app=$(new_app python-other-minor)
  touch "$app/requirements.txt"
  echo "python-3.12.1" >"$app/runtime.txt"
  compile_with_mirror python python-other-minor
  check "a version neither the stack nor the mirror has fails the build" test "$STATUS" != 0
  check "the error names the request" output_has ' !     runtime.txt asks for Python "python-3.12.1", which cannot be had here.'
  check "the error names that line's versions" output_has " !     Python 3.12 versions available: none."
  check "the error names the versions available" output_has " !     Python versions available: 3.11, 3.13 (the stack's is 3.11."
  check "nothing is installed" test ! -e "$app/.heroku"

  app=$(new_app python-wrong-major)
  touch "$app/requirements.txt"
  echo "2.7" >"$app/.python-version"
  compile_with_mirror python python-wrong-major
  check "Python 2 fails the build" test "$STATUS" != 0
  check "the error says what to do" output_has " !     Write a version such as 3.13 in .python-version, or remove it."

  app=$(new_app python-other-patch)
  touch "$app/requirements.txt"
  printf '# pinned by pyenv\n3.11.9\n' >"$app/.python-version"
  compile_with_mirror python python-other-patch
  check "another patch release of the stack's line builds" test "$STATUS" = 0
  check "with a warning naming both" grep -qE '^ !     Warning: .python-version asks for Python 3.11.9, but neither the stack nor the mirror has it: building with Python 3\.11\.' "$LOG"

  app=$(new_app python-minor-only)
  touch "$app/requirements.txt"
  echo "3.11" >"$app/.python-version"
  compile python python-minor-only
  check "the stack's major.minor builds without a mirror" test "$STATUS" = 0
  check "says which and why" output_has " of the stack from .python-version (3.11)"
  check "without a warning" bash -c "! grep -q Warning '$LOG'"
  check "without downloading uv" bash -c "! grep -q 'Installing uv' '$LOG'"

  # runtime.txt comes before .python-version, as on Heroku.
  app=$(new_app python-precedence)
  touch "$app/requirements.txt"
  echo "python-3.11.2" >"$app/runtime.txt"
  echo "3.13" >"$app/.python-version"
  compile_with_mirror python python-precedence
  check "runtime.txt wins over .python-version" output_has " of the stack from runtime.txt (python-3.11.2)"

  app=$(new_app python-requires-python)
  printf '[project]\nname = "x"\nversion = "1"\nrequires-python = ">=3.12, <3.15"\n[tool.setuptools]\npy-modules = []\n' >"$app/pyproject.toml"
  compile_with_mirror python python-requires-python
  check "requires-python picks the newest matching" output_has "       Resolved pyproject.toml's requires-python \">=3.12, <3.15\" to $MIRROR_PYTHON (newest available)"
  check "and builds with it" "$app/.heroku/python/bin/python" -c "import sys; assert sys.version.startswith('$MIRROR_PYTHON')"

  app=$(new_app python-poetry-python)
  printf '[tool.poetry.dependencies]\npython = "^3.11"\n' >"$app/pyproject.toml"
  touch "$app/requirements.txt"
  compile_with_mirror python python-poetry-python
  check "Poetry's python constraint is read" output_has "of the stack from pyproject.toml's tool.poetry.dependencies.python (^3.11)"

  local garbage
  for garbage in "latest" "banana" "3.14; rm -rf /" "3.14t" "system"; do
    app=$(new_app python-bad-version)
    touch "$app/requirements.txt"
    printf '%s\n' "$garbage" >"$app/.python-version"
    compile_with_mirror python python-bad-version
    check "\"$garbage\" fails" test "$STATUS" != 0
    check "and says so" output_has " !     .python-version says \"$garbage\", which is not a Python version."
  done
  app=$(new_app python-huge-version)
  touch "$app/requirements.txt"
  head -c 10485760 /dev/zero | tr '\0' '3' >"$app/.python-version"
  compile_with_mirror python python-huge-version
  check "a 10 MB .python-version fails" test "$STATUS" != 0
  check "and says it is too large" output_has " !     .python-version is larger than 64 KiB, too large for a version file."
  app=$(new_app python-two-versions)
  touch "$app/requirements.txt"
  printf '3.11\n3.13\n' >"$app/.python-version"
  compile_with_mirror python python-two-versions
  check "two versions fail" output_has " !     .python-version names more than one version (3.11, 3.13)."
  app=$(new_app python-bad-specifier)
  printf '[project]\nrequires-python = ">=banana"\n' >"$app/pyproject.toml"
  compile_with_mirror python python-bad-specifier
  check "a bad requires-python fails" test "$STATUS" != 0
  check "and says which" output_has " !     pyproject.toml's requires-python \">=banana\" cannot be used"
  # The runtime step runs as root: a version file linking elsewhere is refused, not read.
  app=$(new_app python-symlink-version)
  touch "$app/requirements.txt"
  ln -s /etc/shadow "$app/.python-version"
  compile_with_mirror python python-symlink-version
  check "a symlinked .python-version fails" test "$STATUS" != 0
  check "and says so" output_has " !     .python-version is a symbolic link; the version file must be a regular file."

  app=$(new_app python-pipfile)
  touch "$app/Pipfile"
  compile python python-pipfile
  check "a Pipfile alone fails" test "$STATUS" != 0
  check "and says to write requirements.txt" output_has "pipenv requirements > requirements.txt"

  app=$(new_app python-two-managers)
  touch "$app/requirements.txt" "$app/uv.lock"
  echo 3.11 >"$app/.python-version"
  compile python python-two-managers
  check "two package managers fail" test "$STATUS" != 0
  check "as on Heroku" output_has " !     Multiple Python package manager files were found: requirements.txt uv.lock."
}

# A Python the stack lacks, from the local mirror: installed once into the runtime cache,
# copied into the slug, and run from there by the dyno.
test_python_mirror_version() {
  local app unit
  python_mirror
  local RUNTIMES="$WORK/runtimes-mirror"
  mkdir -p "$RUNTIMES"
  app=$(new_app python-flask-313 python-flask)
  echo "3.13" >"$app/.python-version"
  compile_with_mirror python python-flask-313
  check "compile succeeds" test "$STATUS" = 0
  check "says which version and why" output_has "       Resolved .python-version \"3.13\" to $MIRROR_PYTHON (newest available)"
  check "and that it downloads it from the mirror" output_has "       Installing Python $MIRROR_PYTHON from the server's Python mirror"
  unit="$RUNTIMES/python/$MIRROR_PYTHON"
  check "the runtime cache holds it" test -x "$unit/bin/python3"
  check "marked as used" test -f "$unit/.wharf-used"
  check "no half-installed unit is left" bash -c "! ls -A '$RUNTIMES/python' | grep -q '^\.tmp'"
  check "the slug holds its own copy" test -x "$app/.heroku/python/bin/python3"
  check "without the cache's marker" test ! -e "$app/.heroku/python/.wharf-used"
  check "it runs from the slug with ssl, sqlite3, ctypes and zlib" env -i PATH=/usr/bin:/bin \
    "$app/.heroku/python/bin/python3" -c "import ssl, sqlite3, ctypes, zlib, sys; assert sys.prefix == '$app/.heroku/python'; assert sys.version.startswith('$MIRROR_PYTHON')"
  check "gunicorn is installed into it" test -x "$app/.heroku/python/bin/gunicorn"
  serves python-flask-313 "$(sed -n 's/^web: //p' "$app/Procfile")" "Hello from python-flask on Wharf (WEB_CONCURRENCY="

  app=$(new_app python-flask-313 python-flask)
  echo "3.13" >"$app/.python-version"
  compile_with_mirror python python-flask-313
  check "a rebuild succeeds" test "$STATUS" = 0
  check "a rebuild uses the cached Python" output_has "       Using cached Python $MIRROR_PYTHON"
  check "and reuses the installed packages" output_has "       Reusing the virtualenv of the last build"
  check "the rebuilt app runs" "$app/.heroku/python/bin/python3" -c 'import flask'

  # The app's own settings must not move where the runtime step downloads from: a closed
  # port in every config file uv and pip read, with an empty runtime cache.
  local closed
  closed=$(free_port)
  RUNTIMES="$WORK/runtimes-attack"
  mkdir -p "$RUNTIMES"
  app=$(new_app python-mirror-attack python-flask)
  echo "3.13" >"$app/.python-version"
  printf '[project]\nname = "x"\nversion = "1"\n[tool.uv]\npython-install-mirror = "http://127.0.0.1:%s"\npython-downloads-json-url = "http://127.0.0.1:%s/x.json"\nindex-url = "http://127.0.0.1:%s/simple"\n' \
    "$closed" "$closed" "$closed" >"$app/pyproject.toml"
  printf 'python-install-mirror = "http://127.0.0.1:%s"\nindex-url = "http://127.0.0.1:%s/simple"\n' "$closed" "$closed" >"$app/uv.toml"
  mkdir -p "$app/.config/uv" "$app/.config/pip"
  cp "$app/uv.toml" "$app/.config/uv/uv.toml"
  printf '[global]\nindex-url = http://127.0.0.1:%s/simple\n' "$closed" | tee "$app/pip.conf" >"$app/.config/pip/pip.conf"
  compile_with_mirror python python-mirror-attack
  check "the app's uv and pip settings do not reach the runtime step" test -x "$RUNTIMES/python/$MIRROR_PYTHON/bin/python3"
  check "which downloads uv from PyPI and Python from the server's mirror" output_has "       Installing Python $MIRROR_PYTHON from the server's Python mirror"
  # (compile may use the app's pip.conf: there the app's code runs anyway, and the cache is read-only.)
  check "and never tries the app's address" bash -c "! sed '/^-----> Using Python/q' '$LOG' | grep -q '127.0.0.1:$closed'"
}

test_python_uv() {
  local app
  app=$(new_app python-uv python-uv)
  check "detected as Python" test "$(detected "$app")" = Python
  compile python python-uv
  check "compile succeeds" test "$STATUS" = 0
  check "says it installs from uv.lock" output_has "-----> Installing dependencies from uv.lock with uv "
  check "the locked packages are installed" "$app/.heroku/python/bin/python" -c 'import flask, gunicorn'
  check "the dev group is not" bash -c "! '$app/.heroku/python/bin/python' -c 'import pytest' 2>/dev/null"
  serves python-uv "$(sed -n 's/^web: //p' "$app/Procfile")" "Hello from python-uv on Wharf (Python 3.11."

  app=$(new_app python-uv-stale python-uv)
  sed -i 's/flask==3.0.3/flask==3.0.2/' "$app/pyproject.toml"
  compile python python-uv-stale
  check "an out-of-date uv.lock fails" test "$STATUS" != 0
  check "and says to run uv lock" output_has "run 'uv lock', commit uv.lock and push again."
}

test_python_poetry() {
  local app
  app=$(new_app python-poetry python-poetry)
  check "detected as Python" test "$(detected "$app")" = Python
  compile python python-poetry
  check "compile succeeds" test "$STATUS" = 0
  check "says it installs from poetry.lock" output_has "-----> Installing dependencies from poetry.lock with Poetry "
  check "the locked packages are installed" "$app/.heroku/python/bin/python" -c 'import flask, gunicorn'
  check "the dev group is not" bash -c "! '$app/.heroku/python/bin/python' -c 'import pytest' 2>/dev/null"
  check "nor Poetry itself" bash -c "! '$app/.heroku/python/bin/python' -c 'import poetry' 2>/dev/null"
  serves python-poetry "$(sed -n 's/^web: //p' "$app/Procfile")" "Hello from python-poetry on Wharf (Python 3.11."
  compile python python-poetry
  check "a second build reuses the cached Poetry" bash -c "! grep -q 'Installing Poetry' '$LOG'"

  app=$(new_app python-poetry-stale python-poetry)
  sed -i 's/flask==3.0.3/flask==3.0.2/' "$app/pyproject.toml"
  compile python python-poetry-stale
  check "an out-of-date poetry.lock fails" test "$STATUS" != 0
  check "and says to run poetry lock" output_has "run 'poetry lock', commit poetry.lock and push again."

  app=$(new_app python-poetry-two python-poetry)
  touch "$app/requirements.txt"
  compile python python-poetry-two
  check "poetry.lock beside requirements.txt fails" test "$STATUS" != 0
  check "with Heroku's message" output_has "Multiple Python package manager files were found"
}

test_python_version_properties() {
  local venv="$WORK/packaging-venv"
  LOG="$WORK/properties.log"
  if ! { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check "packaging==24.2"; } >"$LOG" 2>&1; then
    fail "packaging installs from PyPI" "$LOG"
    return
  fi
  # Seeded random specifiers and versions, checked against the packaging library's answers.
  if "$venv/bin/python" - "$SOURCE_BUILDPACKS/python/lib" >"$LOG" 2>&1 <<'EOF'; then
import random, sys
sys.path.insert(0, sys.argv[1])
from packaging.specifiers import SpecifierSet
from packaging.version import Version
import python_version

rng = random.Random(17)
def version(parts=None):
    return ".".join(str(rng.choice([0, 1, 2, 3, 9, 10, 11, 12, 13, 14])) for _ in range(parts or rng.randint(1, 3)))
def clause():
    operator = rng.choice(["==", "!=", "<=", ">=", "<", ">", "~=", "==*", "!=*", "==="])
    if operator == "~=":
        return "~=" + version(rng.randint(2, 3))
    if operator.endswith("*"):
        return operator[:-1] + version() + ".*"
    return operator + version()
checked = 0
for _ in range(3000):
    spec = ", ".join(clause() for _ in range(rng.randint(1, 3)))
    ours, theirs = python_version.Specifier(spec), SpecifierSet(spec)
    candidates = [version(3) for _ in range(12)] + [version(2)]
    for candidate in candidates:
        expected = theirs.contains(Version(candidate), prereleases=False)
        assert ours.contains(candidate) == expected, (spec, candidate, expected)
        checked += 1
    matching = [c for c in candidates if theirs.contains(Version(c))]
    newest = max(matching, key=Version) if matching else None
    ours_newest = max((c for c in candidates if ours.contains(c)), key=python_version.parse_version, default=None)
    assert (ours_newest and Version(ours_newest)) == (newest and Version(newest)), (spec, ours_newest, newest)
print(f"{checked} checks")
EOF
    pass "specifiers agree with the packaging library on seeded random cases ($(tail -n 1 "$LOG"))"
  else
    fail "specifiers agree with the packaging library on seeded random cases" "$LOG"
  fi
}

test_python_requirements_error() {
  local app
  app=$(new_app python-bad-requirements)
  echo "this is not a requirement ===" >"$app/requirements.txt"
  compile python python-bad-requirements
  check "a bad requirements.txt fails" test "$STATUS" != 0
  check "and says to fix requirements.txt" output_has " !     Fix requirements.txt and push again."
}

test_python_collectstatic() {
  local app
  app=$(new_app python-collectstatic-fails)
  touch "$app/requirements.txt"
  printf 'import django  # not installed\n' >"$app/manage.py"
  compile python python-collectstatic-fails
  check "a failing collectstatic fails the build" test "$STATUS" != 0
  check "the heading names the command" output_has "-----> Running python manage.py collectstatic --noinput"
  check "with its output" output_has "       ModuleNotFoundError: No module named 'django'"
  check "and how to turn it off" output_has "DISABLE_COLLECTSTATIC=1"

  app=$(new_app python-collectstatic-disabled)
  touch "$app/requirements.txt"
  printf 'import django  # not installed\n' >"$app/manage.py"
  set_config python-collectstatic-disabled DISABLE_COLLECTSTATIC 1
  compile python python-collectstatic-disabled
  check "DISABLE_COLLECTSTATIC skips it" test "$STATUS" = 0

  # Config vars reach the build, except those that would redirect its tools.
  app=$(new_app python-config-vars)
  touch "$app/requirements.txt"
  cat >"$app/manage.py" <<'EOF'
import os
with open("seen-by-build.txt", "w") as f:
    f.write(os.environ.get("SECRET_KEY", "") + "\n" + os.environ["PATH"] + "\n")
EOF
  set_config python-config-vars SECRET_KEY s3cret
  set_config python-config-vars PATH /nowhere
  compile python python-config-vars
  check "collectstatic runs with config vars" test "$STATUS" = 0
  check "config vars are exported" test "$(head -n 1 "$app/seen-by-build.txt" 2>/dev/null)" = s3cret
  check "PATH from the config is not" bash -c "! grep -qx /nowhere '$app/seen-by-build.txt'"
}

test_python_profile() {
  local app cgroup
  app=$(new_app python-profile)
  touch "$app/requirements.txt"
  compile python python-profile
  check "compile succeeds" test "$STATUS" = 0
  cgroup="$WORK/cgroup"
  # profile_concurrency [PRESET]: WEB_CONCURRENCY after sourcing the profile with the stand-in
  # cgroup.
  profile_concurrency() {
    # shellcheck disable=SC2016 # expanded by the dyno's shell
    env -i HOME="$app" PATH=/usr/bin:/bin WHARF_CGROUP_DIR="$cgroup" ${1:+WEB_CONCURRENCY=$1} \
      bash -c '. "$HOME/.profile.d/python.sh"; echo "$WEB_CONCURRENCY"' 2>&1
  }
  # concurrency LIMIT_FILE LIMIT [PRESET] [CPU_MAX]: WEB_CONCURRENCY with one limit file.
  concurrency() {
    rm -rf "$cgroup" && mkdir -p "$cgroup/memory"
    if [ -n "$1" ]; then
      printf '%s\n' "$2" >"$cgroup/$1"
    fi
    if [ -n "${4:-}" ]; then
      cp "$4" "$cgroup/cpu.max"
    fi
    profile_concurrency "${3:-}"
  }
  check "512 MB gives 2" test "$(concurrency memory.max 536870912)" = 2
  check "1 GB gives 4" test "$(concurrency memory.max 1073741824)" = 4
  # Past 1 GB Heroku gives two workers per CPU plus one: the quota in cpu.max, rounded up.
  printf '200000 100000\n' >"$WORK/cpu.max"
  check "2.5 GB with 2 CPUs gives 5" test "$(concurrency memory.max 2684354560 "" "$WORK/cpu.max")" = 5
  printf '750000 100000\n' >"$WORK/cpu.max"
  check "14 GB with 7.5 CPUs gives 17" test "$(concurrency memory.max 15032385536 "" "$WORK/cpu.max")" = 17
  check "2.5 GB without a CPU quota counts the CPUs" test "$(concurrency memory.max 2684354560)" = $(($(nproc) * 2 + 1))
  check "cgroup v1's limit is read" test "$(concurrency memory/memory.limit_in_bytes 1073741824)" = 4
  check "no limit (max) counts as 512 MB" test "$(concurrency memory.max max)" = 2
  check "cgroup v1's no limit counts as 512 MB" test "$(concurrency memory/memory.limit_in_bytes 9223372036854771712)" = 2
  check "no cgroup files count as 512 MB" test "$(concurrency "" "")" = 2
  check "the app's own WEB_CONCURRENCY wins" test "$(concurrency memory.max 536870912 7)" = 7
  # A dyno's quota is its cgroup's soft limit, half its hard limit (R15 kills at twice the
  # quota): the quota counts.
  # quota LIMIT_FILE LIMIT QUOTA_FILE QUOTA: WEB_CONCURRENCY with a limit and a soft limit.
  quota() {
    concurrency "$1" "$2" >/dev/null
    printf '%s\n' "$4" >"$cgroup/$3"
    profile_concurrency
  }
  check "cgroup v2's memory.low under memory.max is the quota" \
    test "$(quota memory.max 2147483648 memory.low 1073741824)" = 4
  check "cgroup v1's soft limit under the limit is the quota" \
    test "$(quota memory/memory.limit_in_bytes 1073741824 memory/memory.soft_limit_in_bytes 536870912)" = 2
  check "cgroup v1's unset soft limit leaves the limit" \
    test "$(quota memory/memory.limit_in_bytes 1073741824 memory/memory.soft_limit_in_bytes 9223372036854771712)" = 4
  # shellcheck disable=SC2016 # expanded by the dyno's shell
  check "the virtualenv comes first on PATH, unbuffered, no PYTHONHOME" \
    env -i HOME="$app" PATH=/usr/bin:/bin PYTHONHOME=/x bash -c \
    '. "$HOME/.profile.d/python.sh"; [ "$(command -v python)" = "$HOME/.heroku/python/bin/python" ] && [ "$PYTHONUNBUFFERED" = 1 ] && [ -z "${PYTHONHOME+set}" ]'
}

test_python_django_release() {
  local app
  app=$(new_app python-django)
  echo "Django" >"$app/requirements.txt"
  cat >"$app/manage.py" <<'EOF'
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
EOF
  mkdir -p "$app/mysite" "$app/.heroku/python/bin"
  touch "$app/mysite/__init__.py" "$app/mysite/wsgi.py"
  expect_release python python-django $'---\naddons: []'
  # Once gunicorn is installed (compile has run), the web process is known.
  printf '#!/bin/sh\n' >"$app/.heroku/python/bin/gunicorn" && chmod +x "$app/.heroku/python/bin/gunicorn"
  expect_release python python-django $'---\naddons: []\ndefault_process_types:\n  web: gunicorn mysite.wsgi'
  sed -i '/DJANGO_SETTINGS_MODULE/d' "$app/manage.py"
  expect_release python python-django $'---\naddons: []\ndefault_process_types:\n  web: gunicorn mysite.wsgi'
  mkdir -p "$app/other" && touch "$app/other/wsgi.py"
  expect_release python python-django $'---\naddons: []'
}

tests+=(
  test_python_flask
  test_python_pyproject
  test_python_versions
  test_python_mirror_version
  test_python_uv
  test_python_poetry
  test_python_version_properties
  test_python_requirements_error
  test_python_collectstatic
  test_python_profile
  test_python_django_release
)
