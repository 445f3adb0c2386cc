//! Fetching a build's buildpacks into its work dir: built-in ones and those an admin
//! registered are copied from the server's own directories; git ones are cloned inside a
//! container as the unprivileged build user, from an address the outbound policy allowed.

use std::path::Path;

use anyhow::Context;
use uuid::Uuid;

use crate::builder::{BuildRequest, Builder};
use crate::buildpack::BuildpackSource;
use crate::compile::blocking;
use crate::log::BuildLog;
use crate::step::{chown_tree, mount, StepKind, StepOutput};

impl Builder {
    /// Makes the buildpack available at `dest` (a fresh directory of the work dir), owned by
    /// the build user (buildpacks may write into their own directory). Fails with a message
    /// when the result is not a buildpack.
    pub(crate) async fn fetch(
        &self,
        source: &BuildpackSource,
        dest: &Path,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
    ) -> anyhow::Result<()> {
        match source {
            BuildpackSource::Builtin(name) => {
                copy_dir(&self.inner.config.builtin_buildpacks().join(name), dest).await?;
                chown_tree(dest).await?;
            }
            BuildpackSource::Registered(name) => {
                let registration = self
                    .inner
                    .store
                    .buildpack_registration(name)
                    .await?
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "the buildpack {name:?} is no longer registered on this server: \
                             ask an admin to register it again, or remove it with \
                             `wharf buildpacks:remove {name}`"
                        )
                    })?;
                copy_dir(Path::new(&registration.dir), dest).await?;
                chown_tree(dest).await?;
            }
            BuildpackSource::Git { url, reference } => {
                self.clone_buildpack(
                    url,
                    reference.as_deref(),
                    dest,
                    build_id,
                    request,
                    work,
                    log,
                )
                .await?;
            }
        }
        let missing = blocking(dest.to_owned(), |buildpack| {
            let mut missing = Vec::new();
            for script in ["bin/detect", "bin/compile"] {
                if buildpack.kind(Path::new(script))?.is_none() {
                    missing.push(script);
                }
            }
            Ok(missing)
        })
        .await?;
        if let Some(script) = missing.first() {
            anyhow::bail!(
                "this buildpack has no {script}: it does not follow the buildpack contract"
            );
        }
        Ok(())
    }

    /// `git clone --depth 1` in a container as the build user, into `dest`. The URL's host
    /// is resolved and checked against the outbound policy here, and git is told to connect
    /// to exactly the checked address and to follow no redirect, so neither DNS nor the git
    /// server can send the clone to an address the policy refuses.
    #[allow(clippy::too_many_arguments)]
    async fn clone_buildpack(
        &self,
        url: &str,
        reference: Option<&str>,
        dest: &Path,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
    ) -> anyhow::Result<()> {
        let pinned = pin_url(url, &self.inner.config.outbound).await?;
        blocking(dest.to_owned(), |_| Ok(())).await?;
        chown_tree(dest).await?;
        let mut args: Vec<String> = ["git", "-c", "http.followRedirects=false", "-c"]
            .map(str::to_owned)
            .into();
        args.push("protocol.allow=never".to_owned());
        for scheme in ["https", "http", "git"] {
            args.push("-c".to_owned());
            args.push(format!("protocol.{scheme}.allow=always"));
        }
        if let Some(resolve) = &pinned.curl_resolve {
            args.push("-c".to_owned());
            args.push(format!("http.curloptResolve={resolve}"));
        }
        args.extend(["clone", "--quiet", "--depth", "1"].map(str::to_owned));
        if let Some(reference) = reference {
            args.push("--branch".to_owned());
            args.push(reference.to_owned());
        }
        args.extend(["--".to_owned(), pinned.url.clone(), "/buildpack".to_owned()]);
        let report = self
            .run_container(
                &format!("build-{build_id}-fetch-{}", Uuid::new_v4().simple()),
                work,
                args,
                vec![mount(dest, "/buildpack", false)],
                request,
                StepOutput::log(log),
                StepKind::Build,
            )
            .await?;
        if report.code != 0 {
            anyhow::bail!(
                "could not clone the buildpack {url} (git exited with status {}; its message is above)",
                report.code
            );
        }
        Ok(())
    }
}

/// A git URL with its host checked: what git should clone, and for HTTP(S) the
/// `http.curloptResolve` entry (`host:port:address`) that makes curl connect to the checked
/// address while TLS still verifies the host's name.
#[derive(Debug, PartialEq, Eq)]
struct PinnedUrl {
    url: String,
    curl_resolve: Option<String>,
}

async fn pin_url(url: &str, policy: &wharf_outbound::Policy) -> anyhow::Result<PinnedUrl> {
    let parsed = url::Url::parse(url)
        .map_err(|error| anyhow::anyhow!("the buildpack URL {url:?} cannot be read ({error})"))?;
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the buildpack URL {url:?} names no host"))?
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .or_else(|| (parsed.scheme() == "git").then_some(9418))
        .ok_or_else(|| anyhow::anyhow!("the buildpack URL {url:?} names no port"))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = wharf_outbound::resolve_checked(bare_host, port, policy)
        .await
        .map_err(|refused| {
            anyhow::anyhow!("the buildpack URL {url:?} cannot be used: {refused}")
        })?;
    let address = addresses
        .first()
        .ok_or_else(|| anyhow::anyhow!("the buildpack URL's host {host:?} has no address"))?;
    if parsed.scheme() == "git" {
        // git's own protocol resolves the name itself: hand it the checked address instead.
        let mut pinned = parsed.clone();
        pinned
            .set_ip_host(address.ip())
            .map_err(|()| anyhow::anyhow!("the buildpack URL {url:?} cannot be pinned"))?;
        return Ok(PinnedUrl {
            url: pinned.to_string(),
            curl_resolve: None,
        });
    }
    let ip = match address.ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    Ok(PinnedUrl {
        url: url.to_owned(),
        curl_resolve: Some(format!("{host}:{port}:{ip}")),
    })
}

/// Copies a server-owned directory (a built-in or registered buildpack) to a fresh place in
/// the work dir; `cp -a` copies links as links.
async fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    // Server path: a built-in buildpack, or a directory an admin registered.
    if !from.is_dir() {
        anyhow::bail!("there is no buildpack directory {}", from.display());
    }
    // Server path: copies a server-owned directory to a new one in the work dir.
    let output = tokio::process::Command::new("cp")
        .arg("-a")
        .arg("--no-target-directory")
        .arg(from)
        .arg(to)
        .output()
        .await
        .context("run cp")?;
    if !output.status.success() {
        anyhow::bail!(
            "could not copy the buildpack {}: {}",
            from.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
