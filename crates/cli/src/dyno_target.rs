//! Which dynos `ps:restart` and `ps:stop` act on: all of them, a process type (`web`) or one
//! dyno (`web.1`), and the Platform API path that does it for each.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynoTarget {
    All,
    Type(String),
    Dyno(String),
}

impl DynoTarget {
    /// A name as typed: one with a dot is a dyno (`web.1`, `run.1234`), one without a
    /// process type (`web`).
    pub fn parse(name: &str) -> DynoTarget {
        if name.contains('.') {
            DynoTarget::Dyno(name.to_string())
        } else {
            DynoTarget::Type(name.to_string())
        }
    }

    /// The target of `ps:restart [NAME] [-p TYPE] [-d DYNO]`; clap lets at most one through.
    /// None of them means every dyno.
    pub fn from_args(
        name: Option<&str>,
        process_type: Option<&str>,
        dyno_name: Option<&str>,
    ) -> DynoTarget {
        match (name, process_type, dyno_name) {
            (Some(name), _, _) => DynoTarget::parse(name),
            (None, Some(process_type), _) => DynoTarget::Type(process_type.to_string()),
            (None, None, Some(dyno)) => DynoTarget::Dyno(dyno.to_string()),
            (None, None, None) => DynoTarget::All,
        }
    }

    /// `all dynos`, `web dynos`, `web.1 dyno`, as in "Restarting web dynos on ⬢ app".
    pub fn describe(&self) -> String {
        match self {
            DynoTarget::All => "all dynos".to_string(),
            DynoTarget::Type(process_type) => format!("{process_type} dynos"),
            DynoTarget::Dyno(dyno) => format!("{dyno} dyno"),
        }
    }

    /// The path to `DELETE` to restart these dynos.
    pub fn restart_path<'a>(&'a self, app: &'a str) -> Vec<&'a str> {
        match self {
            DynoTarget::All => vec!["apps", app, "dynos"],
            DynoTarget::Type(process_type) => vec!["apps", app, "formations", process_type],
            DynoTarget::Dyno(dyno) => vec!["apps", app, "dynos", dyno],
        }
    }

    /// The path to `POST` to stop these dynos; the API has none for all of an app's dynos
    /// (scale to zero for that).
    pub fn stop_path<'a>(&'a self, app: &'a str) -> Option<Vec<&'a str>> {
        match self {
            DynoTarget::All => None,
            DynoTarget::Type(process_type) => Some(vec![
                "apps",
                app,
                "formations",
                process_type,
                "actions",
                "stop",
            ]),
            DynoTarget::Dyno(dyno) => Some(vec!["apps", app, "dynos", dyno, "actions", "stop"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_makes_a_dyno() {
        let check = |input: &str, expected: DynoTarget| {
            assert_eq!(DynoTarget::parse(input), expected, "{input}");
        };
        check("web", DynoTarget::Type("web".into()));
        check("web.1", DynoTarget::Dyno("web.1".into()));
        check("run.1234", DynoTarget::Dyno("run.1234".into()));
        check("worker-high", DynoTarget::Type("worker-high".into()));
    }

    #[test]
    fn flags_name_the_kind_outright() {
        let check = |input: (Option<&str>, Option<&str>, Option<&str>), expected: DynoTarget| {
            assert_eq!(
                DynoTarget::from_args(input.0, input.1, input.2),
                expected,
                "{input:?}"
            );
        };
        check((None, None, None), DynoTarget::All);
        check((Some("web"), None, None), DynoTarget::Type("web".into()));
        check(
            (Some("web.2"), None, None),
            DynoTarget::Dyno("web.2".into()),
        );
        check(
            (None, Some("worker"), None),
            DynoTarget::Type("worker".into()),
        );
        check(
            (None, None, Some("web.1")),
            DynoTarget::Dyno("web.1".into()),
        );
    }

    #[test]
    fn each_target_has_its_paths_and_words() {
        let check = |target: DynoTarget, words: &str, restart: &str, stop: Option<&str>| {
            assert_eq!(target.describe(), words);
            assert_eq!(target.restart_path("app").join("/"), restart);
            assert_eq!(
                target
                    .stop_path("app")
                    .map(|path| path.join("/"))
                    .as_deref(),
                stop
            );
        };
        check(DynoTarget::All, "all dynos", "apps/app/dynos", None);
        check(
            DynoTarget::Type("web".into()),
            "web dynos",
            "apps/app/formations/web",
            Some("apps/app/formations/web/actions/stop"),
        );
        check(
            DynoTarget::Dyno("web.1".into()),
            "web.1 dyno",
            "apps/app/dynos/web.1",
            Some("apps/app/dynos/web.1/actions/stop"),
        );
    }
}
