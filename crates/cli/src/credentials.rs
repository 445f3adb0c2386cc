//! The API key in `~/.netrc`, under the API URL's `host` (or `host:port`), as Heroku's CLI
//! keeps it; written with mode 0600.

use std::io::ErrorKind;
use std::path::Path;

use anyhow::{Context, Result};
use reqwest::Url;

use crate::netrc;

/// The netrc `machine` for an API URL: its host, with `:port` when the URL names a port.
pub fn netrc_machine(api_url: &Url) -> String {
    let host = api_url.host_str().unwrap_or_default();
    match api_url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The password (API key) stored for `machine`, if the file and the entry exist.
pub fn key_from_netrc(path: &Path, machine: &str) -> Result<Option<String>> {
    let Some(text) = read(path)? else {
        return Ok(None);
    };
    Ok(netrc::lookup(&text, machine).and_then(|login| login.password))
}

/// Stores `email` and `key` for `machine`, keeping every other entry as it was.
pub fn save(path: &Path, machine: &str, email: &str, key: &str) -> Result<()> {
    let text = read(path)?.unwrap_or_default();
    write_private(path, &netrc::upsert(&text, machine, email, key))
}

/// Removes the entry for `machine`; returns whether there was one.
pub fn forget(path: &Path, machine: &str) -> Result<bool> {
    let Some(text) = read(path)? else {
        return Ok(false);
    };
    match netrc::remove(&text, machine) {
        Some(updated) => write_private(path, &updated).map(|()| true),
        None => Ok(false),
    }
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

/// Writes in place (a symlinked netrc stays a symlink) and makes the file private: it holds
/// API keys.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    #[cfg(unix)]
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("make {} private", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_carry_explicit_ports() {
        let check = |url: &str, expected: &str| {
            let url = Url::parse(url).expect("a valid test URL");
            assert_eq!(netrc_machine(&url), expected, "{url}");
        };
        check("http://127.0.0.1:5000", "127.0.0.1:5000");
        check("https://wharf.example.com", "wharf.example.com");
        check("https://wharf.example.com:8443/", "wharf.example.com:8443");
        check("http://[::1]:5000", "[::1]:5000");
    }

    #[test]
    fn saving_keeps_other_entries_and_makes_the_file_private() -> Result<()> {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join(".netrc");
        assert_eq!(key_from_netrc(&path, "h:1")?, None);
        assert!(!forget(&path, "h:1")?);

        std::fs::write(&path, "machine other login o password p\n")?;
        save(&path, "h:1", "me@example.com", "KEY1")?;
        save(&path, "h:1", "me@example.com", "KEY2")?;
        assert_eq!(key_from_netrc(&path, "h:1")?.as_deref(), Some("KEY2"));
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "machine other login o password p\nmachine h:1\n  login me@example.com\n  password KEY2\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }

        assert!(forget(&path, "h:1")?);
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "machine other login o password p\n"
        );
        Ok(())
    }
}
