//! Reading and editing `.netrc` text, touching only the entry being changed: every other
//! byte of the file (comments, `default`, `macdef` blocks, layout) is kept as it was.

use std::ops::Range;

/// The credentials of one netrc entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub login: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Machine(String),
    Default,
}

/// One `machine` or `default` entry and the bytes it spans, from its keyword to its last
/// `login`/`password`/`account` value.
#[derive(Debug)]
struct Entry {
    target: Target,
    login: Login,
    span: Range<usize>,
}

/// The credentials for `machine`, else those of a `default` entry.
pub fn lookup(text: &str, machine: &str) -> Option<Login> {
    let entries = entries(text);
    let wanted = Target::Machine(machine.to_string());
    entries
        .iter()
        .find(|entry| entry.target == wanted)
        .or_else(|| entries.iter().find(|entry| entry.target == Target::Default))
        .map(|entry| entry.login.clone())
}

/// `text` with the entry for `machine` replaced by one with these credentials, or with such
/// an entry added (before a `default` entry, which must stay last, else at the end).
pub fn upsert(text: &str, machine: &str, login: &str, password: &str) -> String {
    let block = format!(
        "machine {}\n  login {}\n  password {}",
        quote(machine),
        quote(login),
        quote(password)
    );
    let entries = entries(text);
    let wanted = Target::Machine(machine.to_string());
    if let Some(entry) = entries.iter().find(|entry| entry.target == wanted) {
        return splice(text, entry.span.clone(), &block);
    }
    if let Some(entry) = entries.iter().find(|entry| entry.target == Target::Default) {
        let at = entry.span.start;
        return splice(text, at..at, &format!("{block}\n"));
    }
    let mut updated = text.to_string();
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&block);
    updated.push('\n');
    updated
}

/// `text` without any entry for `machine`, or `None` when there was none.
pub fn remove(text: &str, machine: &str) -> Option<String> {
    let wanted = Target::Machine(machine.to_string());
    let spans: Vec<Range<usize>> = entries(text)
        .into_iter()
        .filter(|entry| entry.target == wanted)
        .map(|entry| entry.span)
        .collect();
    if spans.is_empty() {
        return None;
    }
    let mut updated = text.to_string();
    for span in spans.into_iter().rev() {
        // Take the blank space after the entry too, so no empty lines pile up.
        let rest = &text[span.end..];
        let blank = rest.len() - rest.trim_start().len();
        updated.replace_range(span.start..span.end + blank, "");
    }
    if text.ends_with('\n') && !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    Some(updated)
}

fn splice(text: &str, span: Range<usize>, replacement: &str) -> String {
    let mut updated = text.to_string();
    updated.replace_range(span, replacement);
    updated
}

/// A value as a netrc token: bare when it can be, else double-quoted.
fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && !value.starts_with('#')
        && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\');
    if bare {
        return value.to_string();
    }
    format!("\"{}\"", value.replace('\\', r"\\").replace('"', "\\\""))
}

fn entries(text: &str) -> Vec<Entry> {
    let mut lexer = Lexer { text, position: 0 };
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        lexer.skip_blank();
        if lexer.rest().starts_with('#') {
            lexer.skip_line();
            continue;
        }
        let Some(keyword) = lexer.token() else {
            break;
        };
        match keyword.value.as_str() {
            "machine" => {
                let name = lexer.token();
                let end = name.as_ref().map_or(keyword.end, |token| token.end);
                entries.push(Entry {
                    target: Target::Machine(name.map(|token| token.value).unwrap_or_default()),
                    login: Login::default(),
                    span: keyword.start..end,
                });
            }
            "default" => entries.push(Entry {
                target: Target::Default,
                login: Login::default(),
                span: keyword.start..keyword.end,
            }),
            field @ ("login" | "password" | "account") => {
                let (Some(value), Some(entry)) = (lexer.token(), entries.last_mut()) else {
                    continue;
                };
                match field {
                    "login" => entry.login.login = Some(value.value),
                    "password" => entry.login.password = Some(value.value),
                    _ => {}
                }
                entry.span.end = value.end;
            }
            "macdef" => {
                lexer.skip_line();
                lexer.skip_macro_body();
            }
            // Unknown words are ignored, as other netrc readers do.
            _ => {}
        }
    }
    entries
}

struct Token {
    value: String,
    start: usize,
    end: usize,
}

struct Lexer<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        let text: &'a str = self.text;
        &text[self.position..]
    }

    fn skip_blank(&mut self) {
        let rest = self.rest();
        self.position += rest.len() - rest.trim_start().len();
    }

    /// Moves past the next newline (or to the end).
    fn skip_line(&mut self) {
        self.position = match self.rest().find('\n') {
            Some(index) => self.position + index + 1,
            None => self.text.len(),
        };
    }

    /// A macro body runs up to and including the first empty line.
    fn skip_macro_body(&mut self) {
        while self.position < self.text.len() {
            let line_end = self.rest().find('\n').map(|index| self.position + index);
            let line = &self.text[self.position..line_end.unwrap_or(self.text.len())];
            self.position = line_end.map_or(self.text.len(), |end| end + 1);
            if line.trim_end_matches('\r').is_empty() {
                break;
            }
        }
    }

    /// The next word, or double-quoted string with backslash escapes.
    fn token(&mut self) -> Option<Token> {
        self.skip_blank();
        let start = self.position;
        let rest = self.rest();
        if rest.is_empty() {
            return None;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut end = self.text.len();
            let mut chars = quoted.char_indices();
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
                    '"' => {
                        end = start + 1 + index + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            self.position = end;
            return Some(Token { value, start, end });
        }
        let length = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.position = start + length;
        Some(Token {
            value: rest[..length].to_string(),
            start,
            end: self.position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(login: &str, password: &str) -> Option<Login> {
        Some(Login {
            login: Some(login.to_string()),
            password: Some(password.to_string()),
        })
    }

    #[test]
    fn lookup_finds_the_machine_or_the_default() {
        let check = |text: &str, machine: &str, expected: Option<Login>| {
            assert_eq!(lookup(text, machine), expected, "{text:?} {machine}");
        };
        let text = "machine api.example.com login a@x password one\n\
                    machine 127.0.0.1:5000\n  login admin@example.com\n  password KEY\n";
        check(text, "127.0.0.1:5000", login("admin@example.com", "KEY"));
        check(text, "api.example.com", login("a@x", "one"));
        check(text, "127.0.0.1", None);
        check("machine a\tlogin l\n\n\tpassword p", "a", login("l", "p"));
        check(
            "machine a login l password p\ndefault login anon password guest\n",
            "other",
            login("anon", "guest"),
        );
        // A macro body is not read as entries, a comment is skipped.
        check(
            "# my netrc\nmachine a login l password p\nmacdef init\nmachine evil login e password e\n\nmachine b login m password q\n",
            "evil",
            None,
        );
        check(
            "macdef init\ncd /\n\nmachine b login m password q\n",
            "b",
            login("m", "q"),
        );
        check(
            r#"machine a login "with space" password "quote\"d""#,
            "a",
            login("with space", "quote\"d"),
        );
        check(
            "machine a login l password #notacomment",
            "a",
            login("l", "#notacomment"),
        );
        check(
            "machine a login l",
            "a",
            Some(Login {
                login: Some("l".into()),
                password: None,
            }),
        );
        check("", "a", None);
    }

    #[test]
    fn upsert_replaces_only_the_right_machine() {
        let check = |text: &str, expected: &str| {
            assert_eq!(
                upsert(text, "127.0.0.1:5000", "me@x", "NEW"),
                expected,
                "{text:?}"
            );
        };
        let block = "machine 127.0.0.1:5000\n  login me@x\n  password NEW";
        check("", &format!("{block}\n"));
        check(
            "machine other login o password p",
            &format!("machine other login o password p\n{block}\n"),
        );
        check(
            "# keep me\nmachine 127.0.0.1 login o password p\n\n\
             machine 127.0.0.1:5000 login old password OLD\nmachine z   login  z  password z\n",
            &format!(
                "# keep me\nmachine 127.0.0.1 login o password p\n\n\
                 {block}\nmachine z   login  z  password z\n"
            ),
        );
        check(
            "machine 127.0.0.1:5000\n  login old\n  password OLD\n  account acct\nmacdef m\necho hi\n\n",
            &format!("{block}\nmacdef m\necho hi\n\n"),
        );
        check(
            "machine a login l password p\ndefault login anon password guest\n",
            &format!("machine a login l password p\n{block}\ndefault login anon password guest\n"),
        );
    }

    #[test]
    fn upsert_quotes_values_that_need_it() {
        let updated = upsert("", "h", "a b", "p\"q");
        assert_eq!(
            updated,
            "machine h\n  login \"a b\"\n  password \"p\\\"q\"\n"
        );
        assert_eq!(lookup(&updated, "h"), login("a b", "p\"q"));
    }

    #[test]
    fn remove_drops_only_that_machine() {
        let check = |text: &str, expected: Option<&str>| {
            assert_eq!(
                remove(text, "127.0.0.1:5000").as_deref(),
                expected,
                "{text:?}"
            );
        };
        check("machine a login l password p\n", None);
        check("machine 127.0.0.1:5000 login l password p\n", Some(""));
        check(
            "machine a login l password p\n\nmachine 127.0.0.1:5000\n  login l\n  password p\n\n# end\nmachine b login m password q\n",
            Some("machine a login l password p\n\n# end\nmachine b login m password q\n"),
        );
        check(
            "machine a login l password p machine 127.0.0.1:5000 login l password p\n",
            Some("machine a login l password p \n"),
        );
        check(
            "machine 127.0.0.1:5000 login x password y\nmachine 127.0.0.1:5000 login z password w\nmachine k login k password k",
            Some("machine k login k password k"),
        );
    }
}
