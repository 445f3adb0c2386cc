//! Which app a command is about: `-a APP`, else `WHARF_APP`, else the app named by the
//! repository's git remote.

use anyhow::{bail, Result};

/// The git remote `apps:create` and `git:remote` set up, and app commands read.
pub const DEFAULT_REMOTE: &str = "wharf";

/// The app a git URL of the form `<anything>/<app>.git` (or `git@host:<app>.git`) points at.
pub fn app_from_git_url(url: &str) -> Option<String> {
    let stem = url.trim().trim_end_matches('/').strip_suffix(".git")?;
    let name = stem.rsplit(['/', ':']).next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The first of: the flag, the environment, the app in the git remote's URL.
pub fn resolve(
    flag: Option<&str>,
    environment: Option<&str>,
    remote_url: impl FnOnce() -> Option<String>,
) -> Result<String> {
    if let Some(app) = flag.or(environment).filter(|app| !app.is_empty()) {
        return Ok(app.to_string());
    }
    if let Some(app) = remote_url().as_deref().and_then(app_from_git_url) {
        return Ok(app);
    }
    bail!(
        "No app specified: use -a APP, set WHARF_APP, or run `wharf git:remote -a APP` in your repository"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_come_from_git_urls() {
        let check = |url: &str, expected: Option<&str>| {
            assert_eq!(app_from_git_url(url).as_deref(), expected, "{url}");
        };
        check("http://127.0.0.1:5000/myapp.git", Some("myapp"));
        check("https://git.example.com/git/my-app.git\n", Some("my-app"));
        check("https://git.example.com/myapp.git/", Some("myapp"));
        check("git@example.com:myapp.git", Some("myapp"));
        check("ssh://git@example.com/myapp.git", Some("myapp"));
        check("https://example.com/myapp", None);
        check("https://example.com/.git", None);
        check("", None);
    }

    #[test]
    fn the_flag_wins_then_the_environment_then_git() {
        let check = |flag: Option<&str>,
                     environment: Option<&str>,
                     remote: Option<&str>,
                     expected: Option<&str>| {
            let remote = remote.map(str::to_string);
            let resolved = resolve(flag, environment, || remote).ok();
            assert_eq!(resolved.as_deref(), expected, "{flag:?} {environment:?}");
        };
        let url = Some("http://h/from-git.git");
        check(Some("flag"), Some("env"), url, Some("flag"));
        check(None, Some("env"), url, Some("env"));
        check(None, None, url, Some("from-git"));
        check(None, Some(""), url, Some("from-git"));
        check(None, None, Some("http://h/not-an-app"), None);
        check(None, None, None, None);
    }

    #[test]
    fn the_error_says_what_to_do() {
        let error = resolve(None, None, || None).expect_err("no app anywhere");
        assert!(
            error.to_string().contains("wharf git:remote -a APP"),
            "{error}"
        );
    }
}
