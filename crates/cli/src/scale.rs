//! Arguments of `ps:scale` (`web=2`, `web=2:Standard-2X`, `worker+1`, `web=+1`) and
//! `ps:type` (`web=Standard-2X`, or a bare size for every type).

/// One `ps:scale` argument: a process type, a quantity as the API takes it (`"2"`, `"+1"`,
/// `"-1"`) and maybe a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleChange {
    pub process_type: String,
    pub quantity: String,
    pub size: Option<String>,
}

/// One `ps:type` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeChange {
    One {
        process_type: String,
        size: String,
    },
    /// A bare size: every process type of the app.
    All {
        size: String,
    },
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses `TYPE=N`, `TYPE+N`, `TYPE-N`, `TYPE=+N` or `TYPE=-N`, each with an optional `:SIZE`.
pub fn parse_scale(argument: &str) -> Result<ScaleChange, String> {
    let invalid =
        || format!("invalid argument {argument:?}: use TYPE=QUANTITY[:SIZE], TYPE+N or TYPE-N");
    let (change, size) = match argument.split_once(':') {
        Some((change, size)) if is_name(size) => (change, Some(size.to_string())),
        Some(_) => return Err(invalid()),
        None => (argument, None),
    };
    let digits = change.len() - change.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, number) = change.split_at(change.len() - digits);
    if number.is_empty() {
        return Err(invalid());
    }
    let (process_type, quantity) = if let Some(process_type) = head.strip_suffix('=') {
        (process_type, number.to_string())
    } else if let Some(rest) = head.strip_suffix('+') {
        (rest.strip_suffix('=').unwrap_or(rest), format!("+{number}"))
    } else if let Some(rest) = head.strip_suffix('-') {
        (rest.strip_suffix('=').unwrap_or(rest), format!("-{number}"))
    } else {
        return Err(invalid());
    };
    if !is_name(process_type) {
        return Err(invalid());
    }
    Ok(ScaleChange {
        process_type: process_type.to_string(),
        quantity,
        size,
    })
}

/// Parses `TYPE=SIZE`, or a bare `SIZE` for every type.
pub fn parse_type(argument: &str) -> Result<TypeChange, String> {
    let invalid = || format!("invalid argument {argument:?}: use TYPE=SIZE or SIZE");
    match argument.split_once('=') {
        Some((process_type, size)) if is_name(process_type) && is_name(size) => {
            Ok(TypeChange::One {
                process_type: process_type.to_string(),
                size: size.to_string(),
            })
        }
        Some(_) => Err(invalid()),
        None if is_name(argument) => Ok(TypeChange::All {
            size: argument.to_string(),
        }),
        None => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_arguments() {
        let check = |argument: &str, expected: Option<(&str, &str, Option<&str>)>| {
            let expected = expected.map(|(process_type, quantity, size)| ScaleChange {
                process_type: process_type.to_string(),
                quantity: quantity.to_string(),
                size: size.map(str::to_string),
            });
            assert_eq!(parse_scale(argument).ok(), expected, "{argument}");
        };
        check("web=2", Some(("web", "2", None)));
        check("web=2:standard-2x", Some(("web", "2", Some("standard-2x"))));
        check("web+1", Some(("web", "+1", None)));
        check("worker-1", Some(("worker", "-1", None)));
        check("web=+1", Some(("web", "+1", None)));
        check("web=-2:Basic", Some(("web", "-2", Some("Basic"))));
        check("my-worker-3", Some(("my-worker", "-3", None)));
        check("web_2=10", Some(("web_2", "10", None)));
        check("web", None);
        check("web=", None);
        check("=2", None);
        check("web2", None);
        check("web=two", None);
        check("web=2:", None);
        check("web=2:a:b", None);
        check("we b=2", None);
        check("web==2", None);
        check("", None);
    }

    #[test]
    fn scale_errors_name_the_argument() {
        let error = parse_scale("garbage").expect_err("not a scale argument");
        assert!(error.contains("\"garbage\""), "{error}");
    }

    #[test]
    fn type_arguments() {
        let check = |argument: &str, expected: Option<TypeChange>| {
            assert_eq!(parse_type(argument).ok(), expected, "{argument}");
        };
        let one = |process_type: &str, size: &str| TypeChange::One {
            process_type: process_type.to_string(),
            size: size.to_string(),
        };
        check("web=Standard-2X", Some(one("web", "Standard-2X")));
        check(
            "Basic",
            Some(TypeChange::All {
                size: "Basic".into(),
            }),
        );
        check("web=", None);
        check("=Basic", None);
        check("web=a=b", None);
        check("", None);
    }
}
