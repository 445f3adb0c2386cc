//! What the CLI reads from its environment, once, at start: the API URL, the API key, the
//! default app, and where `~/.netrc` is.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use reqwest::Url;

use crate::app_name;
use crate::args::AppArgs;
use crate::client::{Auth, Client};
use crate::credentials;
use crate::git;

pub const DEFAULT_API_URL: &str = "http://127.0.0.1:5000";

#[derive(Debug, Clone)]
pub struct Settings {
    /// `WHARF_API_URL`, else [`DEFAULT_API_URL`].
    pub api_url: String,
    /// `WHARF_API_KEY`: wins over netrc.
    pub api_key: Option<String>,
    /// `WHARF_APP`.
    pub app: Option<String>,
    /// `HOME`, where `.netrc` lives.
    pub home: Option<PathBuf>,
    /// `NO_COLOR` is set to something.
    pub no_color: bool,
    /// `WHARF_CA_FILE`: the CA certificate the rendezvous (`wharf run`) is verified with.
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    pub fn from_process() -> Self {
        Self {
            api_url: variable("WHARF_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
            api_key: variable("WHARF_API_KEY"),
            app: variable("WHARF_APP"),
            home: std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from),
            no_color: variable("NO_COLOR").is_some(),
            ca_file: variable("WHARF_CA_FILE").map(PathBuf::from),
        }
    }

    pub fn api_url(&self) -> Result<Url> {
        let url = Url::parse(&self.api_url)
            .with_context(|| format!("WHARF_API_URL {:?} is not a URL", self.api_url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            bail!("WHARF_API_URL {:?} is not an http(s) URL", self.api_url);
        }
        Ok(url)
    }

    pub fn netrc_path(&self) -> Result<PathBuf> {
        match &self.home {
            Some(home) => Ok(home.join(".netrc")),
            None => bail!("HOME is not set, so there is no ~/.netrc"),
        }
    }

    /// A client authenticated with the caller's API key.
    pub fn client(&self) -> Result<Client> {
        let url = self.api_url()?;
        let Some(key) = self.api_key(&url)? else {
            bail!("Not logged in: run `wharf login`, or set WHARF_API_KEY");
        };
        Client::new(url, Auth::Bearer(key))
    }

    /// The caller's API key for `url`: `WHARF_API_KEY`, else the one in `~/.netrc`.
    pub fn api_key(&self, url: &Url) -> Result<Option<String>> {
        if let Some(key) = &self.api_key {
            return Ok(Some(key.clone()));
        }
        if self.home.is_none() {
            return Ok(None);
        }
        credentials::key_from_netrc(&self.netrc_path()?, &credentials::netrc_machine(url))
    }

    /// The app a command is about (see [`app_name::resolve`]).
    pub fn app(&self, args: &AppArgs) -> Result<String> {
        let remote = args.remote.as_deref().unwrap_or(app_name::DEFAULT_REMOTE);
        app_name::resolve(args.app.as_deref(), self.app.as_deref(), || {
            git::remote_url(remote)
        })
    }
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
