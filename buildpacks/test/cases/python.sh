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

test_python_versions() {
  local app
  app=$(new_app python-wrong-minor)
  touch "$app/requirements.txt"
  echo "python-3.12.1" >"$app/runtime.txt"
  compile python python-wrong-minor
  check "another major.minor fails the build" test "$STATUS" != 0
  check "the error names the requested version" output_has " !     Requested Python 3.12.1 (in runtime.txt)"
  check "the error names the versions available" output_has "Python versions available: 3.11"
  check "nothing is installed" test ! -e "$app/.heroku"

  app=$(new_app python-wrong-major)
  touch "$app/requirements.txt"
  echo "2.7" >"$app/.python-version"
  compile python python-wrong-major
  check "Python 2 fails the build" test "$STATUS" != 0
  check "the error says what to do" output_has "Change .python-version to ask for 3.11"

  app=$(new_app python-other-patch)
  touch "$app/requirements.txt"
  printf '# pinned by pyenv\n3.11.9\n' >"$app/.python-version"
  compile python python-other-patch
  check "another patch release builds" test "$STATUS" = 0
  check "with a warning naming both" grep -qE '^ !     Warning: .python-version asks for Python 3.11.9, but the stack provides Python 3\.11\.' "$LOG"

  app=$(new_app python-minor-only)
  touch "$app/requirements.txt"
  echo "3.11" >"$app/.python-version"
  compile python python-minor-only
  check "the stack's major.minor builds" test "$STATUS" = 0
  check "without a warning" bash -c "! grep -q Warning '$LOG'"

  app=$(new_app python-bad-version)
  touch "$app/requirements.txt"
  echo "latest" >"$app/.python-version"
  compile python python-bad-version
  check "a version that is not one fails" test "$STATUS" != 0
  check "and says so" output_has ".python-version says \"latest\", which is not a Python version."

  app=$(new_app python-pipfile)
  touch "$app/Pipfile"
  compile python python-pipfile
  check "a Pipfile alone fails" test "$STATUS" != 0
  check "and says to write requirements.txt" output_has "pipenv requirements > requirements.txt"
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
  # concurrency LIMIT_FILE LIMIT [PRESET]: WEB_CONCURRENCY after sourcing the profile.
  concurrency() {
    rm -rf "$cgroup" && mkdir -p "$cgroup/memory"
    if [ -n "$1" ]; then
      printf '%s\n' "$2" >"$cgroup/$1"
    fi
    # shellcheck disable=SC2016 # expanded by the dyno's shell
    env -i HOME="$app" PATH=/usr/bin:/bin WHARF_CGROUP_DIR="$cgroup" ${3:+WEB_CONCURRENCY=$3} \
      bash -c '. "$HOME/.profile.d/python.sh"; echo "$WEB_CONCURRENCY"' 2>&1
  }
  check "512 MB gives 2" test "$(concurrency memory.max 536870912)" = 2
  check "1 GB gives 4" test "$(concurrency memory.max 1073741824)" = 4
  check "2.5 GB gives 8" test "$(concurrency memory.max 2684354560)" = 8
  check "cgroup v1's limit is read" test "$(concurrency memory/memory.limit_in_bytes 1073741824)" = 4
  check "no limit (max) counts as 512 MB" test "$(concurrency memory.max max)" = 2
  check "cgroup v1's no limit counts as 512 MB" test "$(concurrency memory/memory.limit_in_bytes 9223372036854771712)" = 2
  check "no cgroup files count as 512 MB" test "$(concurrency "" "")" = 2
  check "the app's own WEB_CONCURRENCY wins" test "$(concurrency memory.max 536870912 7)" = 7
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
  test_python_requirements_error
  test_python_collectstatic
  test_python_profile
  test_python_django_release
)
