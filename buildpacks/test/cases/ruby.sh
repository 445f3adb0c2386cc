# shellcheck shell=bash
# The ruby buildpack's tests, sourced by buildpacks/test/run. They need the stack's Ruby and
# Debian's gems (scripts/deps.sh installs them): the fixtures' Gemfile.lock pins exactly the
# versions Debian installs, so no gem comes from rubygems.org.

# A stack gem's version, to check that a fixture's lockfile still pins what the stack has.
stack_gem_version() {
  /usr/bin/ruby -e 'print Gem::Specification.find_by_name(ARGV[0]).version' "$1" 2>/dev/null
}

test_ruby_detection() {
  local app
  app=$(new_app ruby-order)
  touch "$app/Gemfile" "$app/package.json" "$app/requirements.txt" "$app/index.html" "$app/Procfile"
  check "a Gemfile wins over every other marker" test "$(detected "$app")" = Ruby
  app=$(new_app ruby-nested)
  mkdir -p "$app/sub" && touch "$app/sub/Gemfile"
  check "a Gemfile counts only at the root" test "$(detected "$app")" = none
  app=$(new_app ruby-gemfile-lock-only)
  touch "$app/Gemfile.lock"
  check "a Gemfile.lock alone is not Ruby" test "$(detected "$app")" = none
}

test_ruby_sinatra() {
  local app
  app=$(new_app ruby-sinatra ruby-sinatra)
  check "the fixture pins the stack's sinatra" \
    grep -qF "    sinatra ($(stack_gem_version sinatra))" "$app/Gemfile.lock"
  check "detected as Ruby" test "$(detected "$app")" = Ruby
  compile ruby ruby-sinatra
  check "compile succeeds" test "$STATUS" = 0
  check "names the stack's Ruby" grep -qE '^-----> Using Ruby 3\.[0-9]+\.[0-9]+ and Bundler [0-9.]+ from the stack$' "$LOG"
  check "says the Gemfile's requirement is met" output_has '       Gemfile asks for Ruby "~> 3.1": satisfied'
  check "installs with bundle install" output_has "-----> Installing dependencies with bundle install"
  check "bundler's output is indented" output_has "       Bundle complete!"
  check "development gems are left out" output_has "Gems in the groups 'development' and 'test' were not installed."
  check "binstubs are written" test -x "$app/vendor/bundle/bin/rackup"
  check ".profile.d/ruby.sh is written" test -f "$app/.profile.d/ruby.sh"
  # shellcheck disable=SC2016 # the profile's text
  check "RACK_ENV defaults to production" grep -qF 'export RACK_ENV="${RACK_ENV:-production}"' "$app/.profile.d/ruby.sh"
  check "no RAILS_ENV for a Rack app" bash -c "! grep -q RAILS_ENV '$app/.profile.d/ruby.sh'"
  check "no WEB_CONCURRENCY: it is the app's" bash -c "! grep -q WEB_CONCURRENCY '$app/.profile.d/ruby.sh'"
  check "the export file is written for later buildpacks" grep -q "GEM_HOME=\"$app/vendor/bundle/ruby/" "$BUILDPACKS/ruby/export"
  expect_release ruby ruby-sinatra $'---\naddons: []\ndefault_process_types:\n  rake: bundle exec rake\n  console: bundle exec irb\n  web: bundle exec rackup config.ru -p ${PORT:-5000}'
  serves ruby-sinatra "$(release ruby ruby-sinatra | sed -n 's/^  web: //p')" "Hello from ruby-sinatra on Wharf (Ruby 3."
  serves ruby-sinatra "bundle exec rackup config.ru -p \$PORT" "RACK_ENV=production)"

  # The second build starts from the gems of the first.
  app=$(new_app ruby-sinatra ruby-sinatra)
  touch "$app/vendor-marker"
  compile ruby ruby-sinatra
  check "a rebuild succeeds" test "$STATUS" = 0
  check "a rebuild uses the cached gems" output_has "-----> Using cached gems from the last build"
  check "the cache is kept in CACHE_DIR" test -d "$WORK/cache/ruby-sinatra/ruby/vendor-bundle/bundle"

  # A config var replaces the default groups left out.
  app=$(new_app ruby-sinatra ruby-sinatra)
  set_config ruby-sinatra BUNDLE_WITHOUT "test"
  compile ruby ruby-sinatra
  check "BUNDLE_WITHOUT from the config builds" test "$STATUS" = 0
  check "and installs the development group" output_has "Gems in the group 'test' were not installed."
  # shellcheck disable=SC2016 # the profile's text
  check "which the dynos keep" grep -qF 'export BUNDLE_WITHOUT="${BUNDLE_WITHOUT:-test}"' "$app/.profile.d/ruby.sh"
}

test_ruby_versions() {
  local app
  # ruby_app NAME GEMFILE_RUBY_LINE: an app whose Gemfile has that ruby line and no gems.
  ruby_app() {
    app=$(new_app "$1")
    printf 'source "https://rubygems.org"\n%s\n' "$2" >"$app/Gemfile"
    printf 'GEM\n  remote: https://rubygems.org/\n  specs:\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n' >"$app/Gemfile.lock"
  }
  ruby_app ruby-banana 'ruby "banana"'
  compile ruby ruby-banana
  check "ruby \"banana\" fails the build" test "$STATUS" != 0
  check "and says it is not a version" output_has ' !     The Gemfile'"'"'s ruby line (ruby "banana") does not name a Ruby version.'
  check "nothing is installed" test ! -e "$app/vendor/bundle"

  ruby_app ruby-33 'ruby "~> 3.3"'
  compile ruby ruby-33
  check "Ruby 3.3 on debian-12 fails" test "$STATUS" != 0
  check "the error names the stack's Ruby" grep -qE '^ !     Gemfile asks for Ruby "~> 3\.3", but this stack \(debian-12\) has only Ruby 3\.1\.' "$LOG"
  check "says no Ruby is downloaded" output_has "downloads no other"
  check "and names the stack that has it" output_has " !     Ruby 3.3 is on the debian-13 stack: wharf stack:set debian-13"

  ruby_app ruby-old-exact 'ruby "3.1.0"'
  compile ruby ruby-old-exact
  check "another exact patch release fails" test "$STATUS" != 0
  check "without naming a stack that lacks it" bash -c "! grep -q 'stack:set' '$LOG'"

  ruby_app ruby-pessimistic 'ruby "~> 3.1"'
  compile ruby ruby-pessimistic
  check "~> 3.1 builds on the stack's 3.1" test "$STATUS" = 0

  ruby_app ruby-exact "ruby '$(/usr/bin/ruby -e 'print RUBY_VERSION')'"
  compile ruby ruby-exact
  check "the stack's exact version builds" test "$STATUS" = 0

  ruby_app ruby-dot-version ''
  echo "ruby-2.7" >"$app/.ruby-version"
  compile ruby ruby-dot-version
  check ".ruby-version 2.7 fails" test "$STATUS" != 0
  check "naming the file" output_has " !     .ruby-version asks for Ruby ruby-2.7, but this stack (debian-12)"

  ruby_app ruby-dot-version-ok ''
  printf '# rbenv\n3.1\n' >"$app/.ruby-version"
  compile ruby ruby-dot-version-ok
  check ".ruby-version 3.1 builds" test "$STATUS" = 0
  check "and says so" output_has "       .ruby-version asks for Ruby 3.1: satisfied"

  ruby_app ruby-dot-version-bad ''
  echo "latest" >"$app/.ruby-version"
  compile ruby ruby-dot-version-bad
  check "a .ruby-version that is no version fails" test "$STATUS" != 0
  check "and says so" output_has '.ruby-version says "latest", which is not a Ruby version.'

  ruby_app ruby-lock-version ''
  printf '\nRUBY VERSION\n   ruby 3.3.6p108\n' >>"$app/Gemfile.lock"
  compile ruby ruby-lock-version
  check "Gemfile.lock's RUBY VERSION is checked" test "$STATUS" != 0
  check "and named" output_has " !     Gemfile.lock asks for Ruby 3.3.6p108, but this stack (debian-12)"

  ruby_app ruby-jruby 'ruby "3.1.2", engine: "jruby", engine_version: "9.4.0.0"'
  compile ruby ruby-jruby
  check "another engine fails" test "$STATUS" != 0
  check "and says only MRI is here" output_has "has only MRI Ruby"
}

test_ruby_lockfile_errors() {
  local app
  app=$(new_app ruby-no-lock ruby-sinatra)
  rm "$app/Gemfile.lock"
  compile ruby ruby-no-lock
  check "a missing Gemfile.lock fails" test "$STATUS" != 0
  check "and says to lock" output_has " !     Run 'bundle lock' (or 'bundle install'), commit Gemfile.lock and push again."

  app=$(new_app ruby-stale-lock ruby-sinatra)
  echo 'gem "rake"' >>"$app/Gemfile"
  compile ruby ruby-stale-lock
  check "a Gemfile changed after locking fails" test "$STATUS" != 0
  check "bundler's reason is shown" output_has "after changing"
  check "and the fix" output_has " !     Gemfile.lock does not match the Gemfile (see the output above)."

  app=$(new_app ruby-missing-gem)
  printf 'source "https://rubygems.org"\ngem "wharf-no-such-gem"\n' >"$app/Gemfile"
  printf 'GEM\n  remote: https://rubygems.org/\n  specs:\n    wharf-no-such-gem (1.0.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  wharf-no-such-gem\n' >"$app/Gemfile.lock"
  mkdir -p "$app/vendor/cache"
  compile ruby ruby-missing-gem
  check "a gem in neither vendor/cache nor the stack fails" test "$STATUS" != 0
  check "and says to run bundle cache" output_has "Run 'bundle cache', commit vendor/cache and push again."
}

# An app whose own gem comes from vendor/cache (a .gem built with `gem build`): installed with
# --local, so rubygems.org is never asked (it is not reachable from here anyway).
test_ruby_vendor_cache() {
  local app gem_src
  gem_src="$WORK/gems/wharf_greeting"
  mkdir -p "$gem_src/lib"
  cat >"$gem_src/wharf_greeting.gemspec" <<'EOF'
Gem::Specification.new do |spec|
  spec.name = "wharf_greeting"
  spec.version = "1.2.3"
  spec.summary = "A greeting for Wharf's vendor/cache test"
  spec.authors = ["Wharf"]
  spec.files = ["lib/wharf_greeting.rb"]
  spec.add_dependency "rack", ">= 2"
end
EOF
  echo 'module WharfGreeting; def self.text = "greetings from vendor/cache"; end' >"$gem_src/lib/wharf_greeting.rb"
  app=$(new_app ruby-vendor-cache)
  mkdir -p "$app/vendor/cache"
  (cd "$gem_src" && env -i PATH=/usr/bin:/bin HOME="$gem_src" gem build wharf_greeting.gemspec -o "$app/vendor/cache/wharf_greeting-1.2.3.gem") >/dev/null 2>&1 || true
  printf 'source "https://rubygems.org"\ngem "wharf_greeting"\ngem "webrick"\n' >"$app/Gemfile"
  printf 'require "wharf_greeting"\nrun ->(_env) { [200, {"content-type" => "text/plain"}, [WharfGreeting.text]] }\n' >"$app/config.ru"
  # `bundle lock --local` looks at installed gems only, so the lockfile is written by hand.
  cat >"$app/Gemfile.lock" <<LOCK
GEM
  remote: https://rubygems.org/
  specs:
    rack ($(stack_gem_version rack))
    webrick ($(stack_gem_version webrick))
    wharf_greeting (1.2.3)
      rack (>= 2)

PLATFORMS
  ruby

DEPENDENCIES
  webrick
  wharf_greeting
LOCK
  check "the gem is built into vendor/cache" test -f "$app/vendor/cache/wharf_greeting-1.2.3.gem"
  compile ruby ruby-vendor-cache
  check "compile succeeds" test "$STATUS" = 0
  check "installs with --local" output_has "-----> Installing dependencies with bundle install --local (the gems in vendor/cache)"
  check "the gem from vendor/cache is installed" test -d "$app/vendor/bundle/ruby/$(/usr/bin/ruby -e 'print RbConfig::CONFIG["ruby_version"]')/gems/wharf_greeting-1.2.3"
  check "rack is the stack's, not installed again" bash -c "! ls -d '$app'/vendor/bundle/ruby/*/gems/rack-* 2>/dev/null"
  serves ruby-vendor-cache "$(release ruby ruby-vendor-cache | sed -n 's/^  web: //p')" "greetings from vendor/cache"
}

test_ruby_rails() {
  local app started took stylesheet
  app=$(new_app ruby-rails-sidekiq ruby-rails-sidekiq)
  check "the fixture pins the stack's railties" \
    grep -qF "    railties ($(stack_gem_version railties))" "$app/Gemfile.lock"
  check "the fixture pins the stack's sidekiq" \
    grep -qF "    sidekiq ($(stack_gem_version sidekiq))" "$app/Gemfile.lock"
  started=$SECONDS
  compile ruby ruby-rails-sidekiq
  took=$((SECONDS - started))
  check "compile succeeds" test "$STATUS" = 0
  echo "# ruby-rails-sidekiq: first build ${took}s"
  check "runs assets:precompile" output_has "-----> Running rake assets:precompile"
  stylesheet=$(find "$app/public/assets" -name 'application-*.css' 2>/dev/null | head -n 1)
  check "the stylesheet is fingerprinted into public/assets" test -n "$stylesheet"
  check "tmp/pids is made for the server" test -d "$app/tmp/pids"
  # shellcheck disable=SC2016 # the profile's text
  check "RAILS_ENV defaults to production" grep -qF 'export RAILS_ENV="${RAILS_ENV:-production}"' "$app/.profile.d/ruby.sh"
  check "logs go to stdout" grep -qF 'RAILS_LOG_TO_STDOUT:-enabled' "$app/.profile.d/ruby.sh"
  check "static files are served" grep -qF 'RAILS_SERVE_STATIC_FILES:-enabled' "$app/.profile.d/ruby.sh"
  check "a SECRET_KEY_BASE default is set" grep -qE 'SECRET_KEY_BASE:-[0-9a-f]{128}\}' "$app/.profile.d/ruby.sh"
  expect_release ruby ruby-rails-sidekiq $'---\naddons: []\ndefault_process_types:\n  rake: bundle exec rake\n  console: bin/rails console\n  web: bin/rails server -p ${PORT:-5000} -e $RAILS_ENV'
  serves ruby-rails-sidekiq "$(release ruby ruby-rails-sidekiq | sed -n 's/^  web: //p')" \
    "Hello from ruby-rails-sidekiq on Wharf (Rails $(stack_gem_version railties), RAILS_ENV=production) stylesheet /assets/application-"
  # shellcheck disable=SC2016 # expanded by the dyno's shell
  check "the worker's sidekiq is in the bundle" env -i PATH=/usr/bin:/bin HOME="$app" bash -c \
    'cd "$HOME" && . .profile.d/ruby.sh && bundle exec sidekiq --version'

  # The second build reuses the gems and the secret.
  local secret
  secret=$(grep -oE 'SECRET_KEY_BASE:-[0-9a-f]+' "$app/.profile.d/ruby.sh")
  app=$(new_app ruby-rails-sidekiq ruby-rails-sidekiq)
  started=$SECONDS
  compile ruby ruby-rails-sidekiq
  took=$((SECONDS - started))
  check "a rebuild succeeds" test "$STATUS" = 0
  echo "# ruby-rails-sidekiq: cached build ${took}s"
  check "a rebuild uses the cached gems" output_has "-----> Using cached gems from the last build"
  check "the secret stays the same" grep -qF "$secret}" "$app/.profile.d/ruby.sh"

  # A config var wins over the secret's default.
  # shellcheck disable=SC2016 # expanded by the dyno's shell
  check "a config var SECRET_KEY_BASE wins in the dyno" test "$(env -i HOME="$app" SECRET_KEY_BASE=mine \
    bash -c '. "$HOME/.profile.d/ruby.sh"; echo "$SECRET_KEY_BASE"')" = mine

  # A failing precompile fails the build.
  app=$(new_app ruby-rails-broken-assets ruby-rails-sidekiq)
  echo '//= require no-such-file' >"$app/app/assets/stylesheets/application.css"
  compile ruby ruby-rails-broken-assets
  check "a failing assets:precompile fails the build" test "$STATUS" != 0
  check "and says so" output_has " !     rake assets:precompile failed (see the output above)."
}

tests+=(
  test_ruby_detection
  test_ruby_sinatra
  test_ruby_rails
  test_ruby_versions
  test_ruby_lockfile_errors
  test_ruby_vendor_cache
)
