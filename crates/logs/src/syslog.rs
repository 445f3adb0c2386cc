//! Log lines as drains receive them, the way Heroku's logplex writes them: RFC 5424 syslog
//! messages, each framed by octet counting (RFC 6587), and the HTTPS drain's batch headers.
//!
//! `<190>1 2026-11-22T10:00:00.123456+00:00 d.<token> app web.1 - - message`: PRI 190 is
//! facility local7, severity info; HOSTNAME is the drain's token, APP-NAME the source (`app` or
//! `heroku`), PROCID the dyno or process (`web.1`, `router`), then nil MSGID and STRUCTURED-DATA.

use crate::line::format_time;
use crate::LogLine;

/// local7.info, as logplex marks the lines it forwards.
const PRIORITY: u8 = 190;

/// The RFC 5424 message for a line.
pub fn message(token: &str, line: &LogLine) -> String {
    format!(
        "<{PRIORITY}>1 {} {token} {} {} - - {}",
        format_time(line.at),
        line.source,
        if line.process.is_empty() {
            "-"
        } else {
            &line.process
        },
        line.message
    )
}

/// Appends one octet-counted frame (`LENGTH SP MESSAGE`) for a line to `out`.
pub fn push_frame(out: &mut Vec<u8>, token: &str, line: &LogLine) {
    let message = message(token, line);
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
}

/// The body of an HTTPS drain's POST: the frames of `lines`, back to back.
pub fn batch_body<'a>(token: &str, lines: impl IntoIterator<Item = &'a LogLine>) -> Vec<u8> {
    let mut body = Vec::new();
    for line in lines {
        push_frame(&mut body, token, line);
    }
    body
}

/// The headers of an HTTPS drain's POST, as logplex sends them.
pub fn batch_headers(token: &str, frame_id: &str, count: usize) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/logplex-1".to_owned()),
        ("Logplex-Msg-Count", count.to_string()),
        ("Logplex-Frame-Id", frame_id.to_owned()),
        ("Logplex-Drain-Token", token.to_owned()),
        ("User-Agent", "Wharf-Logplex/1".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogSource;
    use time::macros::datetime;

    fn line(source: LogSource, process: &str, message: &str) -> LogLine {
        LogLine {
            at: datetime!(2026-11-22 10:00:00.123456 UTC),
            source,
            process: process.to_owned(),
            message: message.to_owned(),
        }
    }

    const TOKEN: &str = "d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11";

    #[test]
    fn syslog_frames() {
        let mut out = Vec::new();
        push_frame(&mut out, TOKEN, &line(LogSource::App, "web.1", "GET / 200"));
        push_frame(
            &mut out,
            TOKEN,
            &line(LogSource::Heroku, "router", "at=info method=GET path=\"/\""),
        );
        push_frame(&mut out, TOKEN, &line(LogSource::App, "web.1", "é ünïcode"));
        expect_test::expect![[r#"102 <190>1 2026-11-22T10:00:00.123456+00:00 d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11 app web.1 - - GET / 200124 <190>1 2026-11-22T10:00:00.123456+00:00 d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11 heroku router - - at=info method=GET path="/"105 <190>1 2026-11-22T10:00:00.123456+00:00 d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11 app web.1 - - é ünïcode"#]]
        .assert_eq(&String::from_utf8(out).unwrap());
    }

    #[test]
    fn frame_length_counts_bytes() {
        let mut out = Vec::new();
        push_frame(&mut out, TOKEN, &line(LogSource::App, "web.1", "é"));
        let text = String::from_utf8(out).unwrap();
        let (length, message) = text.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), message.len());
    }

    #[test]
    fn https_batch() {
        let lines = [
            line(
                LogSource::Heroku,
                "web.1",
                "State changed from starting to up",
            ),
            line(LogSource::App, "web.1", "listening on 5000"),
        ];
        let headers = batch_headers(TOKEN, "4c2e4d5e9f0a", lines.len());
        let mut shown: Vec<String> = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        shown.push(String::new());
        shown.push(String::from_utf8(batch_body(TOKEN, &lines)).unwrap());
        expect_test::expect![[r#"
            Content-Type: application/logplex-1
            Logplex-Msg-Count: 2
            Logplex-Frame-Id: 4c2e4d5e9f0a
            Logplex-Drain-Token: d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11
            User-Agent: Wharf-Logplex/1

            129 <190>1 2026-11-22T10:00:00.123456+00:00 d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11 heroku web.1 - - State changed from starting to up110 <190>1 2026-11-22T10:00:00.123456+00:00 d.0d6bd5c3-3a6c-4a47-9c4b-1a9a7b0c7e11 app web.1 - - listening on 5000"#]]
        .assert_eq(&shown.join("\n"));
    }
}
