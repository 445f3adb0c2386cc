//! Buildpacks: where one comes from (built in, registered by an admin from a directory on the
//! server, or a git URL), and the names the built-in ones answer to.

/// The built-in buildpacks, in detection order: the first whose `bin/detect` passes wins.
pub const BUILTIN: &[&str] = &["ruby", "python", "nodejs", "go", "static", "procfile"];

/// Where a buildpack comes from, as an app's buildpack list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildpackSource {
    /// One of [`BUILTIN`] (also as `heroku/python`, `wharf/python`).
    Builtin(&'static str),
    /// A directory on the server that an admin registered under this name (a
    /// [`wharf_model::BuildpackName`]); the builder looks it up in the store when it runs.
    Registered(String),
    /// A git repository (`https://`, `http://` or `git://`), optionally `#ref` for a branch
    /// or tag.
    Git {
        url: String,
        reference: Option<String>,
    },
}

impl BuildpackSource {
    /// What an app's buildpack list names: a built-in buildpack, a registered name, or a git
    /// URL. Pure: whether a name is registered is for the caller to check (refusing an
    /// unknown one with [`BuildpackSource::refusal`]). A path on the server is refused with
    /// the same message whether or not it exists: users never learn what the server holds.
    pub fn parse(raw: &str) -> Result<BuildpackSource, String> {
        // `file://` would read the server's own disk, `ssh` needs keys the server does not
        // hold; git's other transports (`ext::`, `fd::`, `host:path`) are not URLs we accept.
        const GIT_SCHEMES: &[&str] = &["https://", "http://", "git://"];
        const REFUSED_SCHEMES: &[&str] = &["file://", "ssh://", "git+ssh://", "ssh+git://"];
        let raw = raw.trim();
        let short = raw
            .strip_prefix("heroku/")
            .or_else(|| raw.strip_prefix("wharf/"))
            .unwrap_or(raw);
        let short = match short {
            "node" | "node.js" => "nodejs",
            other => other,
        };
        if let Some(name) = BUILTIN.iter().find(|name| **name == short) {
            return Ok(BuildpackSource::Builtin(name));
        }
        if wharf_model::BuildpackName::parse(raw).is_ok() {
            return Ok(BuildpackSource::Registered(raw.to_owned()));
        }
        let lowercase = raw.to_ascii_lowercase();
        if REFUSED_SCHEMES
            .iter()
            .any(|scheme| lowercase.starts_with(scheme))
        {
            return Err(format!(
                "Buildpack {raw:?} is not one Wharf can use: file:// and ssh:// URLs are \
                 refused (file:// would read the server's own disk, and ssh needs keys the \
                 server does not hold). Use an https://, http:// or git:// URL, or ask an admin \
                 to register the buildpack (`wharf buildpacks:register NAME DIR`) and add it \
                 by its name"
            ));
        }
        let Some(rest) = GIT_SCHEMES
            .iter()
            .find_map(|scheme| raw.strip_prefix(scheme))
        else {
            return Err(Self::refusal(raw));
        };
        let (location, reference) = match rest.split_once('#') {
            Some((location, reference)) if !reference.is_empty() => {
                (location, Some(reference.to_owned()))
            }
            _ => (rest.trim_end_matches('#'), None),
        };
        // Git reads a value that starts with `-` as an option; spaces and control
        // characters have no place in a URL or a ref.
        let unusable = |text: &str| text.chars().any(|c| c.is_whitespace() || c.is_control());
        let reference_ok = reference
            .as_deref()
            .is_none_or(|r| !r.starts_with('-') && !unusable(r));
        if location.is_empty() || location.starts_with('-') || unusable(location) || !reference_ok {
            return Err(format!(
                "Buildpack URL {raw:?} is not a git URL Wharf can clone: write it as \
                 https://host/path.git, optionally with #branch-or-tag"
            ));
        }
        Ok(BuildpackSource::Git {
            url: raw[..raw.len() - rest.len() + location.len()].to_owned(),
            reference,
        })
    }

    /// Why `raw` cannot be used as a buildpack: the one message for paths on the server,
    /// unknown names and anything else, so that it never depends on what the server holds.
    pub fn refusal(raw: &str) -> String {
        format!(
            "Buildpack {raw:?} is not one Wharf can use: name a built-in buildpack ({}), a \
             buildpack an admin registered (`wharf buildpacks:registered` lists them), or a git \
             URL (https://, http:// or git://). A directory on the server can be used only once \
             an admin registers it with `wharf buildpacks:register NAME DIR`; then add it by its \
             name with `wharf buildpacks:add NAME`",
            BUILTIN.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: BuildpackSource) {
        assert_eq!(BuildpackSource::parse(raw), Ok(expected), "{raw:?}");
    }

    fn git(url: &str, reference: Option<&str>) -> BuildpackSource {
        BuildpackSource::Git {
            url: url.to_owned(),
            reference: reference.map(str::to_owned),
        }
    }

    fn refused(raw: &str) -> String {
        BuildpackSource::parse(raw).expect_err(raw)
    }

    #[test]
    fn builtin_names_and_aliases() {
        check("heroku/python", BuildpackSource::Builtin("python"));
        check("nodejs", BuildpackSource::Builtin("nodejs"));
        check("heroku/node.js", BuildpackSource::Builtin("nodejs"));
        check("wharf/static", BuildpackSource::Builtin("static"));
        check(" procfile ", BuildpackSource::Builtin("procfile"));
        // Every name a built-in buildpack answers to is reserved, so that no registered
        // buildpack can take it.
        for name in BUILTIN.iter().chain(&["node", "node.js"]) {
            assert!(
                wharf_model::RESERVED_BUILDPACK_NAMES.contains(name),
                "{name} is reserved"
            );
        }
    }

    #[test]
    fn registered_names() {
        check(
            "company-go",
            BuildpackSource::Registered("company-go".into()),
        );
        check(
            "company-ruby_2.7",
            BuildpackSource::Registered("company-ruby_2.7".into()),
        );
        let err = refused("heroku/php");
        assert!(err.contains(&BUILTIN.join(", ")), "{err}");
        assert!(err.contains("buildpacks:register"), "{err}");
        refused("Company-Go");
        refused(".hidden");
    }

    #[test]
    fn git_urls() {
        check(
            "https://example.com/bp.git#v2",
            git("https://example.com/bp.git", Some("v2")),
        );
        check("http://example.com/bp", git("http://example.com/bp", None));
        check(
            "git://example.com/bp.git#",
            git("git://example.com/bp.git", None),
        );
        for bad in [
            "https://",
            "https://-oProxyCommand=x",
            "https://example.com/bp.git#--upload-pack=x",
            "https://example.com/a b",
            "https://example.com/bp#v 2",
            "https://example.com/\nbp",
        ] {
            let err = refused(bad);
            assert!(err.contains("not a git URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn other_transports_are_refused() {
        for raw in [
            "file:///srv/bp",
            "FILE:///srv/bp",
            "ssh://git@example.com/bp.git",
            "git+ssh://git@example.com/bp.git",
        ] {
            let err = refused(raw);
            assert!(
                err.contains("file:// and ssh:// URLs are refused"),
                "{raw}: {err}"
            );
        }
        for raw in [
            "git@example.com:bp.git",
            "ext::sh -c touch% /tmp/x",
            "fd::3",
        ] {
            assert_eq!(refused(raw), BuildpackSource::refusal(raw), "{raw}");
        }
    }

    #[test]
    fn paths_are_refused_alike_whether_they_exist_or_not() {
        for raw in [
            "/usr/share",
            "/no/such/dir",
            "/",
            "relative/dir",
            "./bp",
            "../bp",
        ] {
            assert_eq!(refused(raw), BuildpackSource::refusal(raw), "{raw}");
        }
        let message = refused("/usr/share");
        assert_eq!(
            message.replace("/usr/share", "X"),
            refused("/no/such/dir").replace("/no/such/dir", "X")
        );
        assert!(
            message.contains("wharf buildpacks:register NAME DIR"),
            "{message}"
        );
    }
}
