//! End to end: a tenant (an ordinary user, with only their own app) tries to make the root
//! server read or write host files, or send traffic to itself, through what builds and dynos
//! leave behind. Each attack must fail with a clear message, and the target must be neither
//! read (its content appears in no output and no log) nor written.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use support::{commit_and_push, http_json, Server, User};

/// A server, an admin's secret on its disk, a user who is not an admin, and root-only files
/// outside the data dir standing in for the rest of the host.
struct Tenant {
    server: Server,
    user: User,
    key: String,
    /// The admin's API key: what an attack would most like to read.
    secret: String,
    secret_path: PathBuf,
    /// `file` (root's, mode 0600) and `dir/keep`: what an attack would like to change.
    host: tempfile::TempDir,
    _data: tempfile::TempDir,
}

const HOST_FILE_CONTENT: &str = "host file, root only\n";

impl Tenant {
    fn new(app: &str) -> Tenant {
        Tenant::with_settings(app, &[])
    }

    fn with_settings(app: &str, settings: &[(&str, &str)]) -> Tenant {
        let data = tempfile::tempdir().unwrap();
        let server = Server::start_with(data.path(), settings);
        let admin = User::new(&server.url, Some(&server.admin_key()));
        let created = admin
            .run(&["users:create", "mallory@example.com", "--json"])
            .ok();
        let key = serde_json::from_str::<serde_json::Value>(&created).unwrap()["api_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let user = User::new(&server.url, Some(&key));
        user.run(&["apps:create", app]).ok();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("file"), HOST_FILE_CONTENT).unwrap();
        std::fs::set_permissions(
            host.path().join("file"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::create_dir(host.path().join("dir")).unwrap();
        std::fs::write(host.path().join("dir/keep"), "keep").unwrap();
        Tenant {
            secret: server.admin_key(),
            secret_path: data.path().join("admin-api-key"),
            server,
            user,
            key,
            host,
            _data: data,
        }
    }

    fn host_file(&self) -> PathBuf {
        self.host.path().join("file")
    }

    fn host_dir(&self) -> PathBuf {
        self.host.path().join("dir")
    }

    /// Pushes a Node.js app whose `build` script runs `attack` (in `/app`, as the build user).
    fn push_node_app(&self, app: &str, attack: &str) -> (bool, String) {
        let repo = node_app(attack);
        commit_and_push(&self.server, &self.key, app, repo.path())
    }

    /// Nothing the attacks could have produced shows the secret: the push's output, every
    /// build log, the app's log and the server's own output.
    #[track_caller]
    fn assert_secret_kept(&self, app: &str, output: &str) {
        let mut seen = vec![("the push's output".to_owned(), output.to_owned())];
        let builds = self.server.data_dir.join("builds");
        for entry in std::fs::read_dir(&builds).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                seen.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
        let logs = self.user.run(&["logs", "-n", "1500", "-a", app]);
        seen.push(("the app's log".to_owned(), logs.stdout + &logs.stderr));
        seen.push((
            "the server's output".to_owned(),
            self.server.stdout.join("\n"),
        ));
        for (place, text) in seen {
            assert!(
                !text.contains(self.secret.trim()),
                "the admin's key leaked into {place}"
            );
            assert!(
                !text.contains(HOST_FILE_CONTENT.trim()),
                "the host file leaked into {place}"
            );
        }
    }

    /// The host's files are as they were: content, mode and owner.
    #[track_caller]
    fn assert_host_untouched(&self) {
        let file = self.host_file();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), HOST_FILE_CONTENT);
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
        let dir = std::fs::symlink_metadata(self.host_dir()).unwrap();
        assert_eq!((dir.uid(), dir.gid()), (0, 0));
        assert_eq!(
            std::fs::read_to_string(self.host_dir().join("keep")).unwrap(),
            "keep"
        );
        let secret = std::fs::metadata(&self.secret_path).unwrap();
        assert_eq!(secret.mode() & 0o7777, 0o600);
        assert_eq!((secret.uid(), secret.gid()), (0, 0));
    }
}

/// A Node.js app (in a new directory) whose `build` script runs `attack` in `/app` as the
/// build user.
fn node_app(attack: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("package.json"),
        r#"{"name": "attack", "version": "1.0.0", "private": true,
            "scripts": {"build": "sh attack.sh", "start": "node server.js"}}"#,
    )
    .unwrap();
    std::fs::write(repo.path().join("attack.sh"), format!("set -x\n{attack}\n")).unwrap();
    std::fs::write(
        repo.path().join("server.js"),
        "require('http').createServer((q, r) => r.end('ok')).listen(process.env.PORT);\n",
    )
    .unwrap();
    std::fs::write(repo.path().join("Procfile"), "web: node server.js\n").unwrap();
    repo
}

#[track_caller]
fn assert_refused(ok: bool, output: &str, needles: &[&str]) {
    assert!(!ok, "the push must be refused:\n{output}");
    for needle in needles {
        assert!(
            output.contains(needle),
            "{needle:?} missing from:\n{output}"
        );
    }
}

#[test]
fn a_procfile_linked_to_a_root_only_file_is_never_read() {
    let tenant = Tenant::new("linked");
    let attack = format!(
        "rm -f Procfile && ln -s {} Procfile",
        tenant.secret_path.display()
    );
    let (ok, output) = tenant.push_node_app("linked", &attack);
    assert_refused(
        ok,
        &output,
        &[
            "The app's Procfile cannot be used",
            "Procfile is a symbolic link",
        ],
    );
    tenant.assert_secret_kept("linked", &output);
    tenant.assert_host_untouched();
}

#[test]
fn a_fifo_named_procfile_fails_the_build_without_holding_it() {
    let tenant = Tenant::new("piped");
    let (ok, output) = tenant.push_node_app("piped", "rm -f Procfile && mkfifo Procfile");
    assert_refused(
        ok,
        &output,
        &["Procfile is a FIFO where a regular file was expected"],
    );
    tenant.assert_secret_kept("piped", &output);
}

#[test]
fn a_buildpacks_export_file_linked_to_a_root_only_file_is_never_read() {
    let tenant = Tenant::new("exporter");
    // The build user may write into the buildpack's directory, as buildpacks do.
    let attack = format!("ln -sf {} /buildpack/export", tenant.secret_path.display());
    let (ok, output) = tenant.push_node_app("exporter", &attack);
    assert_refused(
        ok,
        &output,
        &[
            "The nodejs buildpack's export file cannot be used",
            "export is a symbolic link",
        ],
    );
    tenant.assert_secret_kept("exporter", &output);
    tenant.assert_host_untouched();
}

#[test]
fn a_bin_release_linked_to_a_root_only_file_runs_only_in_the_container() {
    let tenant = Tenant::new("releaser");
    let attack = format!(
        "ln -sf {} /buildpack/bin/release",
        tenant.secret_path.display()
    );
    let (ok, output) = tenant.push_node_app("releaser", &attack);
    // Inside the container the link leads nowhere: the server never reads what it names.
    assert_refused(ok, &output, &["buildpack's bin/release failed"]);
    tenant.assert_secret_kept("releaser", &output);
}

#[test]
fn a_slugignore_link_is_refused() {
    let tenant = Tenant::new("ignorer");
    // A link that leaves the app is refused when the source is unpacked...
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("Procfile"), "web: sleep 1000\n").unwrap();
    std::os::unix::fs::symlink(&tenant.secret_path, repo.path().join(".slugignore")).unwrap();
    let (ok, output) = commit_and_push(&tenant.server, &tenant.key, "ignorer", repo.path());
    assert_refused(
        ok,
        &output,
        &[
            "The source could not be unpacked",
            "\".slugignore\"",
            "points outside the app's directory",
        ],
    );
    // ...and one that stays inside is still not read as `.slugignore`.
    std::fs::remove_file(repo.path().join(".slugignore")).unwrap();
    std::os::unix::fs::symlink("Procfile", repo.path().join(".slugignore")).unwrap();
    let (ok, output) = commit_and_push(&tenant.server, &tenant.key, "ignorer", repo.path());
    assert_refused(
        ok,
        &output,
        &[
            "The app's .slugignore cannot be used",
            ".slugignore is a symbolic link",
        ],
    );
    tenant.assert_secret_kept("ignorer", &output);
}

#[test]
fn hard_links_to_root_only_files_never_enter_the_app() {
    let tenant = Tenant::new("linker");
    // Pushed: a source archive (the Builds API's upload) whose `Procfile` is a hard link to
    // the admin's key, by a path that climbs out and by an absolute one.
    for target in [
        "../../../admin-api-key".to_owned(),
        tenant.secret_path.display().to_string(),
    ] {
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.as_old_mut().name[..8].copy_from_slice(b"Procfile");
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        archive.append(&header, std::io::empty()).unwrap();
        let output = build_from_upload(&tenant, "linker", archive.into_inner().unwrap());
        assert!(
            output.contains("The source could not be unpacked")
                && output.contains("points outside the app's directory"),
            "{output}"
        );
        tenant.assert_secret_kept("linker", &output);
    }
    // Made by the build: a hard link needs the file on the same mount and the right to it;
    // the build sees neither the data dir nor any root-owned file it could link to.
    let attack = format!(
        "ln {} stolen; ln /etc/passwd stolen; ln /usr/bin/passwd stolen; ls -l stolen",
        tenant.secret_path.display()
    );
    let (ok, output) = tenant.push_node_app("linker", &attack);
    assert_refused(ok, &output, &["No such file or directory"]);
    assert!(
        output.matches("ln: failed to create hard link").count() >= 2,
        "{output}"
    );
    tenant.assert_secret_kept("linker", &output);
    tenant.assert_host_untouched();
}

/// Uploads `archive` through the Builds API and returns the build's whole output.
fn build_from_upload(tenant: &Tenant, app: &str, archive: Vec<u8>) -> String {
    let (status, source) = http_json(
        &tenant.server.url,
        "POST",
        &format!("/apps/{app}/sources"),
        &tenant.key,
        &serde_json::json!({}),
    );
    assert_eq!(status, 201, "{source}");
    let put_url = source["source_blob"]["put_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = put_bytes(&put_url, &archive);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (status, build) = http_json(
        &tenant.server.url,
        "POST",
        &format!("/apps/{app}/builds"),
        &tenant.key,
        &serde_json::json!({"source_blob": {"url": put_url}}),
    );
    assert_eq!(status, 201, "{build}");
    let stream = build["output_stream_url"].as_str().unwrap();
    support::http_get(stream)
}

fn put_bytes(url: &str, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "PUT /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    stream.write_all(bytes).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn links_left_in_the_cache_the_app_and_a_dyno_are_never_followed_by_root() {
    let tenant = Tenant::new("leaver");
    let (file, dir) = (tenant.host_file(), tenant.host_dir());
    // The cache is given to the build user again at the next build, the work dir and the
    // cache are removed, the app's links are packed into the slug: none of it may reach
    // the host files the links name.
    let attack = format!(
        "ln -sfn {file} /cache/file; ln -sfn {dir} /cache/dir; mkdir -p /cache/deep/er; \
         ln -sfn {dir} /cache/deep/er/dir; ln -sfn {dir} /app/dir; ln -sfn {file} /app/file",
        file = file.display(),
        dir = dir.display()
    );
    let repo = node_app(&attack);
    for _ in 0..2 {
        let (ok, output) = commit_and_push(&tenant.server, &tenant.key, "leaver", repo.path());
        assert!(ok, "{output}");
    }
    tenant.assert_host_untouched();
    tenant
        .user
        .run(&["builds:cache:purge", "-a", "leaver", "--confirm", "leaver"])
        .ok();
    let cache = tenant.server.data_dir.join("cache");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the cache was not purged: {left:?}");
    tenant.assert_host_untouched();

    // A one-off dyno leaves links in its writable layer, which is removed when it ends.
    let run = tenant.user.run(&[
        "run",
        &format!(
            "ln -sfn {dir} /app/dyno-dir && ln -sfn {file} /app/dyno-file && echo planted",
            file = file.display(),
            dir = dir.display()
        ),
        "-a",
        "leaver",
    ]);
    assert!(run.stdout.contains("planted"), "{run:?}");
    tenant.assert_host_untouched();
    tenant.assert_secret_kept("leaver", &run.stdout);
}

#[test]
fn users_cannot_make_the_server_read_its_own_paths_or_call_itself() {
    let tenant = Tenant::new("prober");
    // A directory on the server is no buildpack for a user, and whether it exists shows
    // nowhere in the answer.
    let answer = |path: &str| {
        http_json(
            &tenant.server.url,
            "PUT",
            "/apps/prober/buildpack-installations",
            &tenant.key,
            &serde_json::json!({"updates": [{"buildpack": path}]}),
        )
    };
    let (status, existing) = answer("/usr/share");
    assert_eq!(status, 422, "{existing}");
    let (status, missing) = answer("/no/such/directory");
    assert_eq!(status, 422, "{missing}");
    assert_eq!(
        existing["message"]
            .as_str()
            .unwrap()
            .replace("/usr/share", "PATH"),
        missing["message"]
            .as_str()
            .unwrap()
            .replace("/no/such/directory", "PATH")
    );
    assert!(existing["message"]
        .as_str()
        .unwrap()
        .contains("wharf buildpacks:register"));

    // Drains may not point at this server (its API, its loopback services) or the
    // link-local metadata address: refused before anything connects.
    let api = tenant.server.url.strip_prefix("http://").unwrap();
    for url in [
        format!("syslog://{api}"),
        format!("http://{api}/apps"),
        "syslog://localhost:6379".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let refused = tenant.user.run(&["drains:add", &url, "-a", "prober"]);
        assert_ne!(refused.code, 0, "{url}: {refused:?}");
        assert!(
            refused.stderr.contains("drain"),
            "{url}: the refusal says why: {refused:?}"
        );
    }
    assert!(tenant
        .user
        .run(&["drains", "-a", "prober"])
        .ok()
        .contains("has no drains"));

    // A config value that no process environment can carry is refused whole.
    let (status, body) = http_json(
        &tenant.server.url,
        "PATCH",
        "/apps/prober/config-vars",
        &tenant.key,
        &serde_json::json!({"GOOD": "yes", "BAD": "a\u{0}b"}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("BAD"), "{body}");
    let releases = tenant
        .user
        .run(&["releases", "-a", "prober", "--json"])
        .ok();
    let releases: serde_json::Value = serde_json::from_str(&releases).unwrap();
    assert_eq!(releases.as_array().unwrap().len(), 1, "no release was made");
}

#[test]
fn a_request_with_two_hosts_is_refused_by_the_router() {
    use std::io::{Read, Write};
    let tenant = Tenant::new("hosted");
    let mut stream = std::net::TcpStream::connect(tenant.server.router_authority()).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: hosted.localhost\r\nHost: other.localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

/// A git host standing in for one on the internet: `git daemon` in a network namespace of
/// the test's own, serving bare repositories made from directories.
struct GitHost {
    net: wharf_outbound::test_net::TestNet,
    daemon: std::process::Child,
    root: tempfile::TempDir,
}

impl GitHost {
    fn start() -> GitHost {
        let net = wharf_outbound::test_net::TestNet::create().unwrap();
        let root = tempfile::tempdir().unwrap();
        // `git-daemon` itself, not the `git` wrapper: killing the wrapper leaves the daemon.
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap();
        let exec_path = String::from_utf8(exec_path.stdout).unwrap();
        let daemon = std::process::Command::new("ip")
            .args(["netns", "exec", net.name()])
            .arg(format!("{}/git-daemon", exec_path.trim()))
            .args(["--export-all", "--reuseaddr"])
            .arg(format!("--listen={}", net.peer))
            .arg("--port=9418")
            .arg(format!("--base-path={}", root.path().display()))
            .arg(root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + support::DEADLINE;
        while std::net::TcpStream::connect((net.peer, 9418)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "git daemon did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        GitHost { net, daemon, root }
    }

    /// Serves `source` (a buildpack's directory, links kept) as `<name>.git`; its URL.
    fn serve(&self, name: &str, source: &std::path::Path) -> String {
        let work = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", source.display()))
            .arg(work.path())
            .status()
            .unwrap();
        assert!(status.success());
        support::git(work.path(), &["init", "--quiet", "--initial-branch=main"]);
        support::git(work.path(), &["add", "-A"]);
        support::git(work.path(), &["commit", "--quiet", "-m", name]);
        let bare = self.root.path().join(format!("{name}.git"));
        support::git(
            work.path(),
            &["clone", "--quiet", "--bare", ".", bare.to_str().unwrap()],
        );
        format!("git://{}/{name}.git", self.net.peer)
    }
}

impl Drop for GitHost {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A buildpack for any app with a Procfile, whose `bin/compile` runs `compile` (a shell
/// line, with `BP` its own directory), in a new directory.
fn buildpack(compile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    for (script, body) in [
        (
            "detect",
            "[ -f \"$1/Procfile\" ] && echo Tenant && exit 0\nexit 1".to_owned(),
        ),
        ("compile", format!("BP=$(dirname \"$0\")/..\n{compile}")),
    ] {
        let path = dir.path().join("bin").join(script);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
fn a_tenants_git_buildpack_cannot_make_root_read_or_write_host_files() {
    let git = GitHost::start();
    let allow = format!("{}/32", git.net.peer);
    // The git host is on an internal network: the server checks the URL against
    // WHARF_OUTBOUND_ALLOW, and the build container that clones it connects through the dyno
    // firewall, which WHARF_DYNO_ALLOW opens.
    let tenant = Tenant::with_settings(
        "packed",
        &[
            ("WHARF_OUTBOUND_ALLOW", &allow),
            ("WHARF_DYNO_ALLOW", &allow),
        ],
    );
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildpacks");
    let hello = git.serve("hello", &fixtures.join("hello"));
    // Where the server once copied the previous buildpack's export: a link to a host file.
    let planted =
        buildpack("echo \"-----> Tenant buildpack sees HELLO_BUILDPACK_RAN=$HELLO_BUILDPACK_RAN\"");
    std::fs::create_dir(planted.path().join(".wharf-exports")).unwrap();
    std::os::unix::fs::symlink(tenant.host_file(), planted.path().join(".wharf-exports/00"))
        .unwrap();
    std::os::unix::fs::symlink(tenant.host_file(), planted.path().join("export")).unwrap();
    let planted = git.serve("planted", planted.path());
    let install = |urls: &[&str]| {
        let updates: Vec<_> = urls
            .iter()
            .map(|url| serde_json::json!({"buildpack": url}))
            .collect();
        http_json(
            &tenant.server.url,
            "PUT",
            "/apps/packed/buildpack-installations",
            &tenant.key,
            &serde_json::json!({"updates": updates}),
        )
    };
    let (status, body) = install(&[&hello, &planted]);
    assert_eq!(status, 200, "{body}");

    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("hello.txt"), "hi").unwrap();
    std::fs::write(repo.path().join("Procfile"), "web: bin/greet\n").unwrap();
    let (ok, output) = commit_and_push(&tenant.server, &tenant.key, "packed", repo.path());
    // Both buildpacks were cloned (as the build user, in a container) and ran; the export of
    // the first reached the second through the server's own directory, not the planted
    // link; the second's `export`, a link, was refused when the server came to read it.
    assert_refused(
        ok,
        &output,
        &[
            "Compiling with the hello buildpack",
            "Tenant buildpack sees HELLO_BUILDPACK_RAN=yes",
            "export file cannot be used",
            "export is a symbolic link",
        ],
    );
    tenant.assert_secret_kept("packed", &output);
    tenant.assert_host_untouched();

    // Git buildpacks may not point at this server, nor read its disk.
    for url in [
        "git://127.0.0.1/hello.git".to_owned(),
        format!(
            "http://{}/packed.git",
            tenant.server.url.strip_prefix("http://").unwrap()
        ),
        "file:///var/lib/wharf".to_owned(),
    ] {
        let (status, body) = install(&[&url]);
        assert_eq!(status, 422, "{url}: {body}");
    }
}
