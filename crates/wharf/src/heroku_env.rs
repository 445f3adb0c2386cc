//! `wharf heroku-env`: the environment that points Heroku's own CLI (npm package `heroku`) at
//! this host's Wharf server, as `export` lines for a shell to `eval`.
//!
//! The CLI takes an API host only if it is `localhost` or `127.0.0.1` (any other host makes it
//! fall back to Heroku's API with the user's token), pushes to `https://<api host>/<app>.git`,
//! and sends the token to a side service on `GET /account` unless told where that is: hence
//! the API's TLS listener, Wharf's CA for Node and for git (for that one URL only), and the
//! side service pointed at Wharf itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(clap::Args, Debug, Clone)]
pub struct HerokuEnvArgs {
    /// The server's data dir, where its CA certificate is (`tls/ca.pem`)
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf")]
    pub data_dir: PathBuf,
    /// The server's API TLS listen address
    #[arg(long, env = "WHARF_API_TLS_LISTEN", default_value = "127.0.0.1:5443")]
    pub api_tls_listen: String,
    /// The CA certificate to trust instead of the data dir's (a copy users can read)
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

pub fn run(args: &HerokuEnvArgs) -> anyhow::Result<()> {
    let address: SocketAddr = args.api_tls_listen.parse().with_context(|| {
        format!(
            "WHARF_API_TLS_LISTEN {:?} is not an address:port",
            args.api_tls_listen
        )
    })?;
    let ca = args
        .ca
        .clone()
        .unwrap_or_else(|| args.data_dir.join("tls").join("ca.pem"));
    // Absolute, so that the CLI and git find it from any directory.
    let ca = std::fs::canonicalize(&ca).with_context(|| {
        format!(
            "find Wharf's CA certificate {} (start `wharf server` first, or pass --ca)",
            ca.display()
        )
    })?;
    print!("{}", lines(&api_url(address), &ca));
    Ok(())
}

/// The URL the CLI must use for an API listening on `address`: always a loopback name.
fn api_url(address: SocketAddr) -> String {
    format!("https://127.0.0.1:{}", address.port())
}

/// The shell lines for an API at `url` (`https://127.0.0.1:PORT`) whose CA is `ca`.
pub fn lines(url: &str, ca: &Path) -> String {
    let ca = shell_quote(&ca.display().to_string());
    format!(
        "export HEROKU_HOST={url}\n\
         export HEROKU_PARTICLEBOARD_URL={url}\n\
         export NODE_EXTRA_CA_CERTS={ca}\n\
         export GIT_CONFIG_COUNT=1\n\
         export GIT_CONFIG_KEY_0=http.{url}/.sslCAInfo\n\
         export GIT_CONFIG_VALUE_0={ca}\n\
         export DISABLE_TELEMETRY=true\n\
         export HEROKU_DISABLE_AUTOUPDATE=1\n\
         export HEROKU_SKIP_NEW_VERSION_CHECK=true\n\
         # then `heroku login -i` (your e-mail address, and your API key as the password),\n\
         # or export HEROKU_API_KEY=<your API key>\n"
    )
}

fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_reached_through_loopback() {
        assert_eq!(
            api_url("0.0.0.0:5443".parse().unwrap()),
            "https://127.0.0.1:5443"
        );
        assert_eq!(
            api_url("127.0.0.1:7000".parse().unwrap()),
            "https://127.0.0.1:7000"
        );
    }

    #[test]
    fn the_lines() {
        let text = lines(
            "https://127.0.0.1:5443",
            Path::new("/var/lib/wharf/tls/ca.pem"),
        );
        assert!(text.contains("export HEROKU_HOST=https://127.0.0.1:5443\n"));
        assert!(text.contains("export HEROKU_PARTICLEBOARD_URL=https://127.0.0.1:5443\n"));
        assert!(text.contains("export NODE_EXTRA_CA_CERTS=/var/lib/wharf/tls/ca.pem\n"));
        assert!(text.contains("export GIT_CONFIG_KEY_0=http.https://127.0.0.1:5443/.sslCAInfo\n"));
        let quoted = lines("https://127.0.0.1:5443", Path::new("/home/a b/it's.pem"));
        assert!(quoted.contains(r"export NODE_EXTRA_CA_CERTS='/home/a b/it'\''s.pem'"));
    }
}
