//! How `wharf logs` shows a line such as `2026-11-22T10:00:00.000000+00:00 app[web.1]: hi`:
//! exactly as received, or on a terminal coloured as Heroku's CLI colours it, by source and
//! dyno.

use crate::format::{paint, Style, BLUE, CYAN, DIM, GREEN, MAGENTA, YELLOW};

/// Colours for app dynos, one picked per dyno name. Green, magenta and blue are left out:
/// they mean the API, the platform and the router.
const DYNO_COLORS: [Style; 6] = [
    YELLOW,
    CYAN,
    ("91", "39"), // bright red
    ("93", "39"), // bright yellow
    ("96", "39"), // bright cyan
    ("92", "39"), // bright green
];

/// A line's parts, as `^(\S+ )(\w+)\[([\w.-]+)\]: (.*)$` would match them.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    timestamp: &'a str,
    source: &'a str,
    dyno: &'a str,
    message: &'a str,
}

/// `line` as it is when `color` is off or it is not a log line; else the timestamp dim, the
/// `source[dyno]` tag in its colour, and router lines all blue.
pub fn render(line: &str, color: bool) -> String {
    let Some(parts) = parse(line).filter(|_| color) else {
        return line.to_string();
    };
    let tag = format!("{}[{}]", parts.source, parts.dyno);
    let (tag_style, message_style) = match (parts.source, parts.dyno) {
        ("heroku", "router") => (BLUE, Some(BLUE)),
        ("heroku", _) => (MAGENTA, None),
        ("app", "api") => (GREEN, None),
        (_, dyno) => (dyno_color(dyno), None),
    };
    let message = match message_style {
        Some(style) => paint(true, style, parts.message),
        None => parts.message.to_string(),
    };
    format!(
        "{} {}: {message}",
        paint(true, DIM, parts.timestamp),
        paint(true, tag_style, &tag)
    )
}

fn parse(line: &str) -> Option<Parts<'_>> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let end = line.find(char::is_whitespace)?;
    let (timestamp, rest) = line.split_at(end);
    let rest = rest.strip_prefix(' ').filter(|_| !timestamp.is_empty())?;
    let (source, rest) = rest.split_once('[')?;
    let (dyno, message) = rest.split_once("]: ")?;
    let valid = !source.is_empty()
        && source.chars().all(word)
        && !dyno.is_empty()
        && dyno.chars().all(|c| word(c) || c == '.' || c == '-');
    valid.then_some(Parts {
        timestamp,
        source,
        dyno,
        message,
    })
}

/// The same colour for a dyno name every time, on every run (FNV-1a, not order of
/// appearance).
fn dyno_color(dyno: &str) -> Style {
    let hash = dyno.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    DYNO_COLORS[hash as usize % DYNO_COLORS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-11-22T10:00:00.000000+00:00";

    #[test]
    fn lines_split_into_their_parts() {
        let check = |line: &str, expected: Option<(&str, &str, &str, &str)>| {
            let parts = parse(line).map(|p| (p.timestamp, p.source, p.dyno, p.message));
            assert_eq!(parts, expected, "{line:?}");
        };
        check(
            &format!("{AT} app[web.1]: GET / 200"),
            Some((AT, "app", "web.1", "GET / 200")),
        );
        check(
            &format!("{AT} heroku[router]: at=info method=GET"),
            Some((AT, "heroku", "router", "at=info method=GET")),
        );
        check(
            &format!("{AT} app[worker-high.12]: a [b]: c"),
            Some((AT, "app", "worker-high.12", "a [b]: c")),
        );
        check(
            &format!("{AT} app[web.1]: "),
            Some((AT, "app", "web.1", "")),
        );
        check("plain text from somewhere", None);
        check(&format!("{AT}  app[web.1]: two spaces"), None);
        check(&format!("{AT} app[web 1]: space in dyno"), None);
        check(&format!("{AT} app[]: no dyno"), None);
        check(&format!("{AT} app[web.1]:no space"), None);
        check(&format!("{AT} a-b[web.1]: dash in source"), None);
        check(" app[web.1]: no timestamp", None);
        check("", None);
    }

    #[test]
    fn colour_marks_source_and_dyno() {
        let check = |line: String, expected: String| {
            assert_eq!(render(&line, true), expected, "{line:?}");
            assert_eq!(render(&line, false), line, "without colour, as received");
        };
        let dim = format!("\u{1b}[2m{AT}\u{1b}[22m");
        check(
            format!("{AT} app[api]: Release v3 created by a@example.com"),
            format!("{dim} \u{1b}[32mapp[api]\u{1b}[39m: Release v3 created by a@example.com"),
        );
        check(
            format!("{AT} heroku[web.1]: State changed from starting to up"),
            format!("{dim} \u{1b}[35mheroku[web.1]\u{1b}[39m: State changed from starting to up"),
        );
        check(
            format!("{AT} heroku[router]: at=info status=200"),
            format!(
                "{dim} \u{1b}[34mheroku[router]\u{1b}[39m: \u{1b}[34mat=info status=200\u{1b}[39m"
            ),
        );
        let (start, end) = dyno_color("web.1");
        check(
            format!("{AT} app[web.1]: listening on 5000"),
            format!("{dim} \u{1b}[{start}mapp[web.1]\u{1b}[{end}m: listening on 5000"),
        );
        check("not a log line".to_string(), "not a log line".to_string());
    }

    #[test]
    fn each_dyno_keeps_its_colour() {
        // Pinned: the hash, not the order lines arrive in, picks the colour, so a dyno looks
        // the same on every run.
        let check = |dyno: &str, expected: usize| {
            assert_eq!(dyno_color(dyno), DYNO_COLORS[expected], "{dyno}");
        };
        check("web.1", 4);
        check("web.2", 1);
        check("web.3", 2);
        check("worker.1", 0);
        check("run.1234", 4);
    }
}
