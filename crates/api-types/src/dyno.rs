//! Dynos and log sessions.

use serde::{Deserialize, Serialize};

use crate::NamedRef;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynoRelease {
    pub id: String,
    pub version: i64,
}

/// `GET /apps/{app}/dynos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dyno {
    pub id: String,
    pub app: NamedRef,
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    /// `starting`, `up`, `crashed`, `down` or `idle`.
    pub state: String,
    pub command: String,
    pub size: String,
    pub attach_url: Option<String>,
    pub release: DynoRelease,
    pub created_at: String,
    pub updated_at: String,
    /// Wharf's own: the host it runs on, when hosts joined (`wharf hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `POST /apps/{app}/dynos`: a one-off dyno (`heroku run`, `run:detached`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DynoCreate {
    pub command: String,
    /// Hand the dyno's stdio to the client through `attach_url` (else its output goes to the
    /// log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// Added to the release's config vars. Heroku's CLI sends `COLUMNS` and `LINES` as
    /// numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, EnvValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    /// Run the command without a terminal; `\x04` from the client then ends its input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_no_tty: Option<bool>,
}

/// A value in [`DynoCreate::env`]: a string, or a number (or boolean) taken as its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
}

impl std::fmt::Display for EnvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvValue::Text(text) => f.write_str(text),
            EnvValue::Integer(number) => write!(f, "{number}"),
            EnvValue::Number(number) => write!(f, "{number}"),
            EnvValue::Boolean(value) => write!(f, "{value}"),
        }
    }
}

/// `POST /apps/{app}/log-sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSessionCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSession {
    pub id: String,
    /// Where to read the lines: `text/event-stream`, no credentials needed (the URL holds a
    /// secret).
    pub logplex_url: String,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_takes_numbers_and_strings() {
        let body: DynoCreate = serde_json::from_str(
            r#"{"command":"bash","attach":true,"env":{"TERM":"xterm","COLUMNS":120,"LINES":40,"X":1.5,"Y":true},"force_no_tty":null}"#,
        )
        .expect("valid body");
        let env: Vec<(String, String)> = body
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        assert_eq!(
            env,
            [
                ("COLUMNS".to_owned(), "120".to_owned()),
                ("LINES".to_owned(), "40".to_owned()),
                ("TERM".to_owned(), "xterm".to_owned()),
                ("X".to_owned(), "1.5".to_owned()),
                ("Y".to_owned(), "true".to_owned()),
            ]
        );
        assert_eq!(body.attach, Some(true));
        assert_eq!(body.force_no_tty, None);
    }
}
