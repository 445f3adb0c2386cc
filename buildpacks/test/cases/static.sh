# shellcheck shell=bash
# The static buildpack's tests, sourced by buildpacks/test/run.

test_static_site() {
  local app
  app=$(new_app static-site static-site)
  check "detected as Static" test "$(detected "$app")" = Static
  compile static static-site
  check "compile succeeds" test "$STATUS" = 0
  check "checks static.json" output_has "       Checking static.json"
  check "names the root" output_has "       Serving files from the app's root directory"
  expect_release static static-site $'---\naddons: []\ndefault_process_types:\n  web: wharf static-server'

  app=$(new_app static-public-html)
  mkdir -p "$app/public_html" && touch "$app/public_html/index.html" "$app/static.json"
  echo '{}' >"$app/static.json"
  compile static static-public-html
  check "public_html is the default root" output_has "       Serving files from public_html"

  app=$(new_app static-unsupported)
  touch "$app/index.html"
  echo '{"proxies": {"/api/": {"origin": "https://example.com"}}}' >"$app/static.json"
  compile static static-unsupported
  check "unsupported keys build" test "$STATUS" = 0
  check "with a warning naming them" output_has " !     Warning: static.json: \"proxies\" is not supported by Wharf's static server; it is ignored"

  app=$(new_app static-no-index)
  echo '{"routes": {"/**": "app.html"}}' >"$app/static.json"
  compile static static-no-index
  check "a site without index.html builds" test "$STATUS" = 0
  check "with a warning" output_has " !     Warning: there is no index.html in ."
}

test_static_errors() {
  local app
  app=$(new_app static-bad-json)
  touch "$app/index.html"
  echo '{"clean_urls": true,' >"$app/static.json"
  compile static static-bad-json
  check "invalid JSON fails the build" test "$STATUS" != 0
  check "with the parser's reason" output_has " !     static.json is not valid JSON: "
  check "and what to do" output_has " !     Fix static.json and push again."

  app=$(new_app static-bad-keys)
  touch "$app/index.html"
  echo '{"clean_urls": "yes", "routes": {"app/*": "index.html", "/x": "../etc/passwd"}, "headers": {"/**": {"Bad Header": "x"}}, "redirects": {"/a": {"url": "/b", "status": 200}}, "root": "dist"}' >"$app/static.json"
  compile static static-bad-keys
  check "wrong types fail the build" test "$STATUS" != 0
  check "naming the key" output_has ' !     static.json: "clean_urls" must be true or false'
  check "a route out of the root is refused" output_has ' !     static.json: routes: "/x" must name a file inside the root, without ..'
  check "a bad header name is refused" output_has ' !     static.json: headers: "/**": "Bad Header" is not a valid header name'
  check "a relative route is refused" output_has ' !     static.json: routes: "app/*" must start with /'
  check "a non-redirect status is refused" output_has ' !     static.json: redirects: "/a": status must be one of 301, 302, 303, 307, 308'

  app=$(new_app static-missing-root)
  echo '{"root": "dist"}' >"$app/static.json"
  compile static static-missing-root
  check "a missing root fails the build" test "$STATUS" != 0
  check "naming it" output_has ' !     static.json: root "dist" is not a directory in the app'
}

tests+=(
  test_static_site
  test_static_errors
)
