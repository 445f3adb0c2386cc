//! End-to-end Ruby: a Rails 6.1 app (`buildpacks/test/fixtures/ruby-rails-sidekiq`, locked to
//! the stack's Debian gems) pushed with git to a fresh server is detected by the built-in Ruby
//! buildpack, precompiles its assets, migrates the PostgreSQL add-on in its release phase
//! (`DATABASE_URL`), serves through the router with Heroku's default web process, and a job
//! queued by a POST to the web dyno is done by a Sidekiq worker dyno on the Redis add-on
//! (`REDIS_URL`); a second push reuses the cached gems.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::fixture_apps::{fixture_copy, push_repo, request, wait_for_page};
use support::{Server, User};

/// How long a build and a dyno's start (Rails boots in a few seconds) may take.
const BUILD_DEADLINE: Duration = Duration::from_secs(300);
/// How long the test waits for pages and jobs.
const DEADLINE: Duration = Duration::from_secs(120);

fn create_addon(user: &User, service: &str, app: &str) {
    let created = user.run(&["addons:create", service, "-a", app]).ok();
    assert!(
        created.contains(&format!("Creating {service} on ⬢ {app}")),
        "{created}"
    );
}

#[test]
fn a_rails_app_with_a_sidekiq_worker_deploys_migrates_and_does_its_jobs() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "rails-app"]).ok();
    create_addon(&user, "heroku-postgresql", "rails-app");
    create_addon(&user, "heroku-redis", "rails-app");

    let repo = fixture_copy("ruby-rails-sidekiq");
    let started = Instant::now();
    let output = push_repo(&server, &key, "rails-app", repo.path());
    println!(
        "first push of ruby-rails-sidekiq: {} s",
        started.elapsed().as_secs()
    );
    for expected in [
        "Ruby app detected",
        "-----> Using Ruby 3.",
        "-----> Installing dependencies with bundle install",
        "Bundle complete!",
        "-----> Running rake assets:precompile",
        "CreateJobs: migrated",
    ] {
        assert!(output.contains(expected), "no {expected:?} in:\n{output}");
    }

    // Heroku's default web process (the Procfile names only the worker and the release).
    let home = wait_for_page(
        &server,
        "rails-app",
        "/",
        "Hello from ruby-rails-sidekiq on Wharf",
        BUILD_DEADLINE,
    );
    assert!(home.contains("RAILS_ENV=production"), "{home}");
    // The precompiled stylesheet is served by Rails (RAILS_SERVE_STATIC_FILES).
    // (Bodies may come chunked: the checks look for text in them.)
    let start = home
        .find("/assets/application-")
        .expect("a stylesheet path");
    let stylesheet: String = home[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let css = wait_for_page(&server, "rails-app", &stylesheet, "font-family", DEADLINE);
    assert!(css.contains("sans-serif"), "{css}");
    let jobs = wait_for_page(&server, "rails-app", "/jobs", "in the database", DEADLINE);
    assert!(jobs.contains("0 jobs in the database:"), "{jobs}");

    user.run(&["ps:scale", "worker=1", "-a", "rails-app"]).ok();
    let queued = request(&server, "POST", "rails-app", "/jobs?n=21");
    let Some((201, body)) = &queued else {
        panic!("POST /jobs answered {queued:?}");
    };
    assert!(body.contains("queued job 1: double 21"), "{body}");
    let done = wait_for_page(&server, "rails-app", "/jobs/1", "done", DEADLINE);
    assert!(done.contains("job 1 done by worker.1: 42"), "{done}");
    let jobs = wait_for_page(&server, "rails-app", "/jobs", "1=done", DEADLINE);
    assert!(jobs.contains("1 jobs in the database: 1=done"), "{jobs}");

    // A second push (a new commit) builds from the cached gems and keeps the database.
    let started = Instant::now();
    let output = push_repo(&server, &key, "rails-app", repo.path());
    println!(
        "second push of ruby-rails-sidekiq: {} s",
        started.elapsed().as_secs()
    );
    assert!(
        output.contains("-----> Using cached gems from the last build"),
        "{output}"
    );
    wait_for_page(&server, "rails-app", "/jobs", "1=done", BUILD_DEADLINE);
}
