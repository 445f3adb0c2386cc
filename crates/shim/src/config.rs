//! The shim's command line, parsed by hand (a pure function over the arguments).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const USAGE: &str = "usage: wharf-shim --dir DIR --runtime BIN --root STATE \
--bundle BUNDLE --id ID [--orphan-after SECS] [--stop-grace SECS] [--buffer-bytes N]";

const DEFAULT_ORPHAN_AFTER: Duration = Duration::from_secs(600);
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_BUFFER_BYTES: usize = 1024 * 1024;

/// What one shim holds and how patient it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// The shim's own directory (made by the server): socket, init pid, exit status, log.
    pub(crate) dir: PathBuf,
    /// The OCI runtime binary (runc or crun).
    pub(crate) runtime: PathBuf,
    /// The runtime's state root (`--root`).
    pub(crate) root: PathBuf,
    /// The container's OCI bundle.
    pub(crate) bundle: PathBuf,
    /// The container id, `[A-Za-z0-9_.-]+`.
    pub(crate) id: String,
    /// How long the shim waits without a connected server before it stops the container.
    pub(crate) orphan_after: Duration,
    /// How long an orphaned shim waits between TERM and KILL.
    pub(crate) stop_grace: Duration,
    /// Payload bytes of output kept while no server is connected.
    pub(crate) buffer_bytes: usize,
}

impl Config {
    /// Parses the arguments after the program name; `Err` says what is wrong, for stderr.
    pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Config, String> {
        let mut dir = None;
        let mut runtime = None;
        let mut root = None;
        let mut bundle = None;
        let mut id = None;
        let mut orphan_after = None;
        let mut stop_grace = None;
        let mut buffer_bytes = None;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let flag = flag.to_string_lossy().into_owned();
            let Some(value) = args.next() else {
                return Err(format!("{flag}: a value is missing"));
            };
            let set = |slot: &mut Option<OsString>| match slot.replace(value.clone()) {
                Some(_) => Err(format!("{flag} given twice")),
                None => Ok(()),
            };
            match flag.as_str() {
                "--dir" => set(&mut dir)?,
                "--runtime" => set(&mut runtime)?,
                "--root" => set(&mut root)?,
                "--bundle" => set(&mut bundle)?,
                "--id" => set(&mut id)?,
                "--orphan-after" => set(&mut orphan_after)?,
                "--stop-grace" => set(&mut stop_grace)?,
                "--buffer-bytes" => set(&mut buffer_bytes)?,
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        let required = |slot: Option<OsString>, flag: &str| {
            slot.filter(|value| !value.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| format!("{flag} is required"))
        };
        let id = required(id, "--id")?.into_os_string();
        let id = id
            .to_str()
            .filter(|id| is_valid_id(id))
            .ok_or_else(|| format!("--id {id:?}: only A-Z a-z 0-9 _ . - are allowed"))?
            .to_owned();
        Ok(Config {
            dir: required(dir, "--dir")?,
            runtime: required(runtime, "--runtime")?,
            root: required(root, "--root")?,
            bundle: required(bundle, "--bundle")?,
            id,
            orphan_after: seconds(orphan_after, "--orphan-after")?.unwrap_or(DEFAULT_ORPHAN_AFTER),
            stop_grace: seconds(stop_grace, "--stop-grace")?.unwrap_or(DEFAULT_STOP_GRACE),
            buffer_bytes: number(buffer_bytes, "--buffer-bytes")?.unwrap_or(DEFAULT_BUFFER_BYTES),
        })
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn number<T: std::str::FromStr>(value: Option<OsString>, flag: &str) -> Result<Option<T>, String> {
    value
        .map(|value| {
            value
                .to_str()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| format!("{flag} {value:?}: not a whole number"))
        })
        .transpose()
}

fn seconds(value: Option<OsString>, flag: &str) -> Result<Option<Duration>, String> {
    Ok(number(value, flag)?.map(Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Config, String> {
        Config::parse(args.split_whitespace().map(OsString::from))
    }

    const REQUIRED: &str = "--dir /d --runtime /bin/runc --root /s --bundle /b --id web.1";

    #[test]
    fn required_flags_and_defaults() {
        let config = parse(REQUIRED).expect("valid");
        assert_eq!(
            config,
            Config {
                dir: "/d".into(),
                runtime: "/bin/runc".into(),
                root: "/s".into(),
                bundle: "/b".into(),
                id: "web.1".into(),
                orphan_after: Duration::from_secs(600),
                stop_grace: Duration::from_secs(30),
                buffer_bytes: 1048576,
            }
        );
    }

    #[test]
    fn optional_flags() {
        let config = parse(&format!(
            "--orphan-after 1 {REQUIRED} --stop-grace 0 --buffer-bytes 10"
        ))
        .expect("valid");
        assert_eq!(config.orphan_after, Duration::from_secs(1));
        assert_eq!(config.stop_grace, Duration::ZERO);
        assert_eq!(config.buffer_bytes, 10);
    }

    #[test]
    fn refusals() {
        let check = |args: &str, expected: &str| {
            let error = parse(args).expect_err(args);
            assert!(error.contains(expected), "{args}: {error}");
        };
        check(&format!("{REQUIRED} --verbose 1"), "unknown flag --verbose");
        check(&format!("{REQUIRED} --stop-grace"), "a value is missing");
        check(
            &format!("{REQUIRED} --stop-grace soon"),
            "not a whole number",
        );
        check(&format!("{REQUIRED} --dir /e"), "--dir given twice");
        check(
            "--dir /d --runtime r --root s --bundle b",
            "--id is required",
        );
        check(
            "--runtime r --root s --bundle b --id x",
            "--dir is required",
        );
        for id in ["a/b", "a:b", "ü", "$x"] {
            check(
                &format!("--dir /d --runtime r --root s --bundle b --id {id}"),
                "only A-Z",
            );
        }
    }
}
