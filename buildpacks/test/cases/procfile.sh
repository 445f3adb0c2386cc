# shellcheck shell=bash
# The procfile buildpack's tests, sourced by buildpacks/test/run.

test_procfile_only() {
  local app
  app=$(new_app procfile-only procfile-only)
  check "detected as Procfile" test "$(detected "$app")" = Procfile
  compile procfile procfile-only
  check "compile succeeds" test "$STATUS" = 0
  check "says there is nothing to build" output_has "-----> Procfile app: nothing to build"
  check "names the process types" output_has "       Process types: web"
  expect_release procfile procfile-only $'---\naddons: []'
  serves procfile-only "$(sed -n 's/^web: //p' "$app/Procfile")" "Hello from procfile-only on Wharf"
}

tests+=(
  test_procfile_only
)
