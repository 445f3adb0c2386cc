//! Editing an app's buildpack list as `buildpacks:add`, `:remove`, `:set` and `:clear` do,
//! before the whole list is sent back (`PUT /apps/{app}/buildpack-installations`). Indexes
//! are 1-based, as users see them.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Insert before `index`; append when `None`.
    Add {
        url: String,
        index: Option<usize>,
    },
    /// Replace the one at `index`, or append when `index` is one past the end.
    Set {
        url: String,
        index: usize,
    },
    RemoveUrl(String),
    RemoveIndex(usize),
    Clear,
}

/// The list after `edit`, or why the edit makes no sense.
pub fn apply(current: &[String], edit: &Edit) -> Result<Vec<String>> {
    let mut list = current.to_vec();
    match edit {
        Edit::Add { url, index } => {
            refuse_duplicate(&list, url)?;
            let position = match index {
                Some(index) => position(*index, list.len() + 1)?,
                None => list.len(),
            };
            list.insert(position, url.clone());
        }
        Edit::Set { url, index } => {
            refuse_duplicate(&list, url)?;
            let position = position(*index, list.len() + 1)?;
            match list.get_mut(position) {
                Some(slot) => *slot = url.clone(),
                None => list.push(url.clone()),
            }
        }
        Edit::RemoveUrl(url) => match list.iter().position(|listed| listed == url) {
            Some(position) => {
                list.remove(position);
            }
            None => bail!("Buildpack not found. Nothing was removed."),
        },
        Edit::RemoveIndex(index) => {
            let position = position(*index, list.len())?;
            list.remove(position);
        }
        Edit::Clear => list.clear(),
    }
    Ok(list)
}

fn refuse_duplicate(list: &[String], url: &str) -> Result<()> {
    if list.iter().any(|listed| listed == url) {
        bail!("The buildpack {url} is already set on your app.");
    }
    Ok(())
}

/// The 0-based position of 1-based `index`, which may be at most `max`.
fn position(index: usize, max: usize) -> Result<usize> {
    if (1..=max).contains(&index) {
        return Ok(index - 1);
    }
    match max {
        0 => bail!("Invalid index. The app has no buildpacks."),
        1 => bail!("Invalid index. Only valid value is 1."),
        _ => bail!("Invalid index. Please choose a value between 1 and {max}"),
    }
}

/// `1. python` lines, each after `indent`.
pub fn numbered(urls: &[String], indent: &str) -> Vec<String> {
    urls.iter()
        .enumerate()
        .map(|(index, url)| format!("{indent}{}. {url}", index + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(urls: &[&str]) -> Vec<String> {
        urls.iter().map(|url| url.to_string()).collect()
    }

    fn check(current: &[&str], edit: Edit, expected: Result<&[&str], &str>) {
        let result = apply(&list(current), &edit).map_err(|error| error.to_string());
        let expected = expected.map(list).map_err(str::to_string);
        assert_eq!(result, expected, "{current:?} {edit:?}");
    }

    fn add(url: &str, index: Option<usize>) -> Edit {
        Edit::Add {
            url: url.to_string(),
            index,
        }
    }

    fn set(url: &str, index: usize) -> Edit {
        Edit::Set {
            url: url.to_string(),
            index,
        }
    }

    #[test]
    fn adding_appends_or_inserts_at_an_index() {
        check(&[], add("python", None), Ok(&["python"]));
        check(&["a", "b"], add("c", None), Ok(&["a", "b", "c"]));
        check(&["a", "b"], add("c", Some(1)), Ok(&["c", "a", "b"]));
        check(&["a", "b"], add("c", Some(2)), Ok(&["a", "c", "b"]));
        check(&["a", "b"], add("c", Some(3)), Ok(&["a", "b", "c"]));
        check(
            &["a", "b"],
            add("c", Some(4)),
            Err("Invalid index. Please choose a value between 1 and 3"),
        );
        check(
            &[],
            add("c", Some(2)),
            Err("Invalid index. Only valid value is 1."),
        );
        check(
            &["a"],
            add("c", Some(0)),
            Err("Invalid index. Please choose a value between 1 and 2"),
        );
        check(
            &["python", "nodejs"],
            add("nodejs", None),
            Err("The buildpack nodejs is already set on your app."),
        );
    }

    #[test]
    fn setting_replaces_the_one_at_an_index() {
        check(&[], set("python", 1), Ok(&["python"]));
        check(&["a", "b"], set("c", 1), Ok(&["c", "b"]));
        check(&["a", "b"], set("c", 2), Ok(&["a", "c"]));
        check(&["a", "b"], set("c", 3), Ok(&["a", "b", "c"]));
        check(
            &["a", "b"],
            set("c", 5),
            Err("Invalid index. Please choose a value between 1 and 3"),
        );
        check(
            &["a", "b"],
            set("b", 1),
            Err("The buildpack b is already set on your app."),
        );
    }

    #[test]
    fn removing_takes_a_url_or_an_index() {
        check(
            &["a", "b", "c"],
            Edit::RemoveUrl("b".into()),
            Ok(&["a", "c"]),
        );
        check(
            &["a"],
            Edit::RemoveUrl("zzz".into()),
            Err("Buildpack not found. Nothing was removed."),
        );
        check(&["a", "b", "c"], Edit::RemoveIndex(1), Ok(&["b", "c"]));
        check(&["a", "b", "c"], Edit::RemoveIndex(3), Ok(&["a", "b"]));
        check(
            &["a", "b", "c"],
            Edit::RemoveIndex(4),
            Err("Invalid index. Please choose a value between 1 and 3"),
        );
        check(
            &["a"],
            Edit::RemoveIndex(2),
            Err("Invalid index. Only valid value is 1."),
        );
        check(
            &[],
            Edit::RemoveIndex(1),
            Err("Invalid index. The app has no buildpacks."),
        );
    }

    #[test]
    fn clearing_empties_the_list() {
        check(&["a", "b"], Edit::Clear, Ok(&[]));
        check(&[], Edit::Clear, Ok(&[]));
    }

    #[test]
    fn lists_are_numbered_from_one() {
        assert_eq!(
            numbered(&list(&["python", "/opt/bp"]), "  "),
            ["  1. python", "  2. /opt/bp"]
        );
        assert!(numbered(&[], "").is_empty());
    }
}
