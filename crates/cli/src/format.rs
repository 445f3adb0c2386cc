//! Pure text formatting: colours, tables, key/value blocks, sizes, times and shell quoting.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// An SGR style: the code that starts it and the one that ends only it, so styles nest (an
/// app name in a header).
pub type Style = (&'static str, &'static str);

pub const BOLD: Style = ("1", "22");
pub const DIM: Style = ("2", "22");
pub const RED: Style = ("31", "39");
pub const GREEN: Style = ("32", "39");
pub const YELLOW: Style = ("33", "39");
pub const BLUE: Style = ("34", "39");
pub const MAGENTA: Style = ("35", "39");
pub const CYAN: Style = ("36", "39");

/// `text` in `style` when `color`, else as it is.
pub fn paint(color: bool, (start, end): Style, text: &str) -> String {
    if color {
        format!("\u{1b}[{start}m{text}\u{1b}[{end}m")
    } else {
        text.to_string()
    }
}

/// Rows as lines: padded into columns when `align` (a terminal), else cells joined by two
/// spaces so that scripts see no padding. Trailing blanks are trimmed either way.
pub fn table(rows: &[Vec<String>], align: bool) -> Vec<String> {
    if !align {
        return rows
            .iter()
            .map(|row| row.join("  ").trim_end().to_string())
            .collect();
    }
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            let width = visible_width(cell);
            match widths.get_mut(column) {
                Some(current) => *current = (*current).max(width),
                None => widths.push(width),
            }
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let width = widths.get(column).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(' ', width - visible_width(cell)));
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// `Key: value` lines with the values aligned after the longest key, as Heroku's
/// `styledObject` prints them.
pub fn key_values(pairs: &[(String, String)]) -> Vec<String> {
    let width = pairs
        .iter()
        .map(|(key, _)| visible_width(key) + 1)
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| {
            let padding = width - (visible_width(key) + 1);
            let line = format!("{key}:{} {value}", " ".repeat(padding));
            line.trim_end().to_string()
        })
        .collect()
}

/// The width of `text` on a terminal, not counting ANSI colour sequences.
pub fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip a CSI sequence: ESC [ parameters final-letter.
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            width += 1;
        }
    }
    width
}

/// At most `max` characters, the last one an ellipsis when something was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A byte count for humans, in binary units: `512 B`, `1.5 KB`, `23 MB`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let rounded_tenths = (value * 10.0).round() / 10.0;
    if unit == 0 || rounded_tenths >= 10.0 || rounded_tenths.fract() == 0.0 {
        format!("{} {}", value.round(), UNITS[unit])
    } else {
        format!("{rounded_tenths:.1} {}", UNITS[unit])
    }
}

/// How long ago `then` was, coarsely: `~ 7s ago`, `~ 5m ago`, `~ 2h ago`, `~ 3d ago`.
pub fn relative_time(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (now - then).whole_seconds().max(0);
    let (amount, unit) = match seconds {
        0..=59 => (seconds, "s"),
        60..=3599 => (seconds / 60, "m"),
        3600..=86_399 => (seconds / 3600, "h"),
        _ => (seconds / 86_400, "d"),
    };
    format!("~ {amount}{unit} ago")
}

/// An API timestamp as `2026/11/22 10:00:00 +0000 (~ 5m ago)`; unparsable input is shown as is.
pub fn timestamp(rfc3339: &str, now: OffsetDateTime) -> String {
    let Ok(then) = OffsetDateTime::parse(rfc3339, &Rfc3339) else {
        return rfc3339.to_string();
    };
    let format = format_description!(
        "[year]/[month]/[day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    match then.to_offset(UtcOffset::UTC).format(format) {
        Ok(text) => format!("{text} ({})", relative_time(then, now)),
        Err(_) => rfc3339.to_string(),
    }
}

/// `value` as one shell word: bare when it is safe, otherwise single-quoted.
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:@,%+=".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|row| row.iter().map(|cell| cell.to_string()).collect())
            .collect()
    }

    #[test]
    fn tables_align_on_a_terminal_only() {
        let check = |input: &[&[&str]], align: bool, expected: &[&str]| {
            assert_eq!(table(&rows(input), align), expected, "{input:?}");
        };
        let input: &[&[&str]] = &[&["Type", "Size", "Qty"], &["web", "Standard-2X", "2"]];
        check(
            input,
            true,
            &["Type  Size         Qty", "web   Standard-2X  2"],
        );
        check(input, false, &["Type  Size  Qty", "web  Standard-2X  2"]);
        // The last column is never padded; a short row leaves no trailing blanks.
        check(&[&["a", "long"], &["bb"]], true, &["a   long", "bb"]);
        // Colour codes take no room.
        check(
            &[&["\u{1b}[35mab\u{1b}[0m", "x"], &["abc", "y"]],
            true,
            &["\u{1b}[35mab\u{1b}[0m   x", "abc  y"],
        );
        check(&[], true, &[]);
    }

    #[test]
    fn key_value_lines_align_values() {
        let check = |input: &[(&str, &str)], expected: &[&str]| {
            let pairs: Vec<(String, String)> = input
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(key_values(&pairs), expected, "{input:?}");
        };
        check(
            &[
                ("Git URL", "http://x/a.git"),
                ("Slug Size", ""),
                ("Maintenance", "off"),
            ],
            &[
                "Git URL:     http://x/a.git",
                "Slug Size:",
                "Maintenance: off",
            ],
        );
        check(
            &[("A", "1"), ("LONG_KEY", "x=y")],
            &["A:        1", "LONG_KEY: x=y"],
        );
    }

    #[test]
    fn sizes_read_like_heroku() {
        let check = |bytes: i64, expected: &str| assert_eq!(human_size(bytes), expected);
        check(0, "0 B");
        check(512, "512 B");
        check(1536, "1.5 KB");
        check(1024 * 1024, "1 MB");
        check(23 * 1024 * 1024 + 300_000, "23 MB");
        check(5 * 1024 * 1024 * 1024, "5 GB");
    }

    #[test]
    fn relative_times_are_coarse() {
        let now = datetime!(2026-11-22 10:00:00 UTC);
        let check = |then: OffsetDateTime, expected: &str| {
            assert_eq!(relative_time(then, now), expected);
        };
        check(datetime!(2026-11-22 09:59:53 UTC), "~ 7s ago");
        check(datetime!(2026-11-22 09:55:00 UTC), "~ 5m ago");
        check(datetime!(2026-11-22 07:59:00 UTC), "~ 2h ago");
        check(datetime!(2026-11-19 09:00:00 UTC), "~ 3d ago");
        check(datetime!(2026-11-22 10:00:05 UTC), "~ 0s ago");
    }

    #[test]
    fn timestamps_show_utc_and_age() {
        let now = datetime!(2026-11-22 10:05:00 UTC);
        let check = |input: &str, expected: &str| assert_eq!(timestamp(input, now), expected);
        check(
            "2026-11-22T10:00:00Z",
            "2026/11/22 10:00:00 +0000 (~ 5m ago)",
        );
        check(
            "2026-11-22T11:00:00+01:00",
            "2026/11/22 10:00:00 +0000 (~ 5m ago)",
        );
        check("yesterday", "yesterday");
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        let check = |input: &str, expected: &str| assert_eq!(shell_quote(input), expected);
        check("plain-value_1.2", "plain-value_1.2");
        check("postgres://u:p@h:5432/db", "postgres://u:p@h:5432/db");
        check("two words", "'two words'");
        check("it's", r"'it'\''s'");
        check("", "''");
        check("$HOME", "'$HOME'");
    }

    #[test]
    fn truncation_marks_the_cut() {
        let check = |input: &str, max: usize, expected: &str| {
            assert_eq!(truncate(input, max), expected);
        };
        check("short", 10, "short");
        check("exactly10!", 10, "exactly10!");
        check("a bit too long", 10, "a bit too…");
    }
}
