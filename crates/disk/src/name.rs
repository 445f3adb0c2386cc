//! The names of capped directories: what the pool accepts, so that a name is always one plain
//! entry of the pool's mount point and never the pool's own `.images` directory.

/// The longest name: an image file's name (`<name>.img`) must fit in 255 bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Checks a capped directory's name: `[a-zA-Z0-9_.-]`, 1 to [`MAX_NAME_LEN`] bytes, not
/// starting with '.' (which also rules out `.` and `..`).
pub fn check(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        anyhow::bail!(
            "{name:?} is not a disk pool directory name: use 1 to {MAX_NAME_LEN} letters, \
             digits, '_', '.' and '-', not starting with '.'"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(name: &str, valid: bool) {
        assert_eq!(check(name).is_ok(), valid, "{name:?}");
    }

    #[test]
    fn names_are_plain_entries() {
        check_name("dyno-4f1c2b9e", true);
        check_name("build-6f1c2b9e-3a4d-4e5f-8a7b-1c2d3e4f5a6b", true);
        check_name("cache_app.v2", true);
        check_name(&"a".repeat(MAX_NAME_LEN), true);
        check_name(&"a".repeat(MAX_NAME_LEN + 1), false);
        check_name("", false);
        check_name(".", false);
        check_name("..", false);
        check_name(".images", false);
        check_name("a/b", false);
        check_name("../etc", false);
        check_name("a b", false);
        check_name("naïve", false);
        check_name("a\0b", false);
    }

    #[test]
    fn the_refusal_says_what_to_do() {
        let message = check("a/b").unwrap_err().to_string();
        assert!(
            message.contains("\"a/b\"") && message.contains("letters"),
            "{message}"
        );
    }
}
