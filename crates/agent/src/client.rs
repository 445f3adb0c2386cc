//! The agent's client of the control plane's API: heartbeats, the host's desired state and
//! slug downloads, with the host's credential. It never follows a redirect (a control plane
//! never sends one, and the credential must not travel elsewhere).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures_util::TryStreamExt;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use wharf_api_types::{AgentDesired, AgentLogs, AgentRoutes, Heartbeat, Lease};

use crate::lease::Outcome;

/// How long a heartbeat may take: past it, the attempt counts as silence.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long reading the desired state may take.
const DESIRED_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read of the route table may take (the control plane holds it up to 20 s
/// waiting for a change).
const ROUTES_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take, for any request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest slug an agent downloads.
pub const SLUG_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

/// A client of one control plane, as one host.
#[derive(Clone)]
pub struct ControlPlane {
    http: reqwest::Client,
    base: reqwest::Url,
    credential: String,
}

impl ControlPlane {
    /// `base` is the control plane's API URL (`https://wharf.example.com:5000`).
    pub fn new(base: &str, credential: String) -> anyhow::Result<ControlPlane> {
        let base = reqwest::Url::parse(base.trim_end_matches('/'))
            .with_context(|| format!("parse the control plane's URL {base:?}"))?;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https"),
            "the control plane's URL must be http:// or https://, not {base}"
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .context("make the HTTP client")?;
        Ok(ControlPlane {
            http,
            base,
            credential,
        })
    }

    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Sends a heartbeat: the lease it renewed, or how it failed (for fencing).
    pub async fn heartbeat(&self, report: &Heartbeat) -> (Outcome, Option<Lease>) {
        let sent = self
            .http
            .put(self.url("/agent/heartbeat"))
            .bearer_auth(&self.credential)
            .timeout(HEARTBEAT_TIMEOUT)
            .json(report)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return (failure_outcome(&error), None),
        };
        match response.status() {
            StatusCode::OK => match response.json::<Lease>().await {
                Ok(lease) => (
                    Outcome::Renewed {
                        lease: Duration::from_millis(lease.lease_ms),
                    },
                    Some(lease),
                ),
                // An answer we cannot read renews nothing, but the control plane is there.
                Err(_) => (Outcome::Refused, None),
            },
            StatusCode::UNAUTHORIZED => (Outcome::Revoked, None),
            _ => (Outcome::Refused, None),
        }
    }

    /// What this host should run.
    pub async fn desired(&self) -> anyhow::Result<AgentDesired> {
        self.get_json(
            self.url("/agent/desired"),
            DESIRED_TIMEOUT,
            "a read of this host's dynos",
        )
        .await
    }

    /// The hosts' route table once it is newer than version `after` (the control plane
    /// waits for one up to 20 s, then answers with the same table).
    pub async fn routes(&self, after: Option<u64>) -> anyhow::Result<AgentRoutes> {
        let mut url = self.url("/agent/routes");
        if let Some(after) = after {
            url.query_pairs_mut()
                .append_pair("after", &after.to_string());
        }
        self.get_json(url, ROUTES_TIMEOUT, "a read of the route table")
            .await
    }

    /// Tells the control plane that this host's router holds a request for `app`, which
    /// sleeps.
    pub async fn wake(&self, app: uuid::Uuid) -> anyhow::Result<()> {
        let request = self.http.post(self.url(&format!("/agent/wake/{app}")));
        self.send(
            request.timeout(DESIRED_TIMEOUT),
            &format!("a wake of app {app}"),
            |s| s.is_success(),
        )
        .await
        .map(drop)
    }

    /// The connection of the client attaching to the one-off dyno `id` placed on this host:
    /// the control plane hands it over once the client comes to its rendezvous.
    pub async fn attach(&self, id: uuid::Uuid) -> anyhow::Result<reqwest::Upgraded> {
        let request = self
            .http
            .get(self.url(&format!("/agent/one-offs/{id}/attach")))
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, wharf_api_types::ATTACH_PROTOCOL);
        let what = format!("the attach of one-off dyno {id}");
        self.send(request, &what, |s| s == StatusCode::SWITCHING_PROTOCOLS)
            .await?
            .upgrade()
            .await
            .with_context(|| format!("{what}: upgrade"))
    }

    /// A GET of `url` answered with `200` and JSON.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
        timeout: Duration,
        what: &str,
    ) -> anyhow::Result<T> {
        let request = self.http.get(url).timeout(timeout);
        self.send(request, what, |s| s == StatusCode::OK)
            .await?
            .json()
            .await
            .context("read the control plane's answer")
    }

    /// Sends `request` (`what` it asks, for errors) with the host's credential; the answer if
    /// its status is one `wanted` takes.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
        wanted: impl Fn(StatusCode) -> bool,
    ) -> anyhow::Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.credential)
            .send()
            .await
            .with_context(|| format!("send the control plane {what}"))?;
        let status = response.status();
        anyhow::ensure!(
            wanted(status),
            "the control plane answered {status} to {what}"
        );
        Ok(response)
    }

    /// Sends a batch of log lines; an error means the control plane did not take them.
    pub async fn post_logs(&self, logs: &AgentLogs) -> anyhow::Result<()> {
        let request = self.http.post(self.url("/agent/logs")).json(logs);
        self.send(request.timeout(DESIRED_TIMEOUT), "log lines", |s| {
            s.is_success()
        })
        .await
        .map(drop)
    }

    /// Downloads slug `slug` to `path`, checking its size against [`SLUG_LIMIT`] and its
    /// SHA-256 against `checksum` (`SHA256:<hex>`) before it is renamed into place: `path`
    /// holds either nothing or the whole, checked archive.
    pub async fn fetch_slug(
        &self,
        slug: uuid::Uuid,
        checksum: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        let expected = checksum
            .strip_prefix("SHA256:")
            .with_context(|| format!("slug {slug} has checksum {checksum:?}, not SHA256:<hex>"))?
            .to_ascii_lowercase();
        let response = self
            .http
            .get(self.url(&format!("/agent/slugs/{slug}")))
            .bearer_auth(&self.credential)
            .send()
            .await
            .with_context(|| format!("download slug {slug}"))?;
        let status = response.status();
        anyhow::ensure!(
            status == StatusCode::OK,
            "the control plane answered {status} to a download of slug {slug}"
        );
        let directory = path.parent().context("a slug path has a directory")?;
        // Server path: the agent's own slug directory, named by the slug's id.
        tokio::fs::create_dir_all(directory)
            .await
            .with_context(|| format!("create {}", directory.display()))?;
        let partial = path.with_extension("partial");
        let written = async {
            // Server path: as above; `create` truncates what an earlier attempt left.
            let mut file = tokio::fs::File::create(&partial).await?;
            let mut hash = Sha256::new();
            let mut total: u64 = 0;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.try_next().await.map_err(std::io::Error::other)? {
                total += chunk.len() as u64;
                if total > SLUG_LIMIT {
                    return Err(std::io::Error::other(format!(
                        "slug {slug} is larger than {SLUG_LIMIT} bytes"
                    )));
                }
                hash.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            Ok::<_, std::io::Error>(hex(&hash.finalize()))
        }
        .await;
        let actual = match written {
            Ok(actual) => actual,
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(error).with_context(|| format!("download slug {slug}"));
            }
        };
        if actual != expected {
            let _ = tokio::fs::remove_file(&partial).await;
            anyhow::bail!("slug {slug} arrived with SHA-256 {actual}, not {expected}: not used");
        }
        // Server path: the partial download renamed over the final name in one step.
        tokio::fs::rename(&partial, path)
            .await
            .with_context(|| format!("move slug {slug} into place"))
    }
}

/// A failed send: silence unless the control plane's host answered (refused the connection).
fn failure_outcome(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        return Outcome::Silent;
    }
    if error.is_connect() && refused(error) {
        return Outcome::Refused;
    }
    Outcome::Silent
}

/// Whether the error's chain holds a refused connection (the host answered with a reset).
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = current.source();
    }
    false
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
