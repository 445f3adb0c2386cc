//! `config:set` arguments: `KEY=VALUE`, where the value may itself contain `=`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPair {
    pub key: String,
    pub value: String,
}

/// Splits at the first `=`; a missing `=` or an empty key is a usage error.
pub fn parse_config_pair(argument: &str) -> Result<ConfigPair, String> {
    match argument.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok(ConfigPair {
            key: key.to_string(),
            value: value.to_string(),
        }),
        _ => Err(format!(
            "{argument:?} is invalid: must be in the format FOO=bar"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        let check = |argument: &str, expected: Option<(&str, &str)>| {
            let expected = expected.map(|(key, value)| ConfigPair {
                key: key.to_string(),
                value: value.to_string(),
            });
            assert_eq!(parse_config_pair(argument).ok(), expected, "{argument}");
        };
        check("A=1", Some(("A", "1")));
        check(
            "DATABASE_URL=postgres://u:p@h/db?sslmode=require",
            Some(("DATABASE_URL", "postgres://u:p@h/db?sslmode=require")),
        );
        check("EMPTY=", Some(("EMPTY", "")));
        check("A==", Some(("A", "=")));
        check("SPACED=a b", Some(("SPACED", "a b")));
        check("A", None);
        check("=1", None);
        check("", None);
    }
}
