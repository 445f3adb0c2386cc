//! Add-ons and their attachments: an add-on is a resource a provider runs for an app (a
//! database, a Redis); each attachment gives one app its config vars under a name
//! (`DATABASE` gives `DATABASE_URL`). Pure rules: names, config var names, descriptions.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::Invalid;

/// Where an add-on is in its life. Stored as text; the API shows these words as Heroku does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddonState {
    /// Recorded, the provider not yet done (or interrupted: start-up finishes it).
    Provisioning,
    Provisioned,
    /// Detached from every app, the provider not yet done destroying it.
    Deprovisioning,
}

impl AddonState {
    pub fn as_str(self) -> &'static str {
        match self {
            AddonState::Provisioning => "provisioning",
            AddonState::Provisioned => "provisioned",
            AddonState::Deprovisioning => "deprovisioning",
        }
    }

    pub fn parse(raw: &str) -> Result<AddonState, Invalid> {
        match raw {
            "provisioning" => Ok(AddonState::Provisioning),
            "provisioned" => Ok(AddonState::Provisioned),
            "deprovisioning" => Ok(AddonState::Deprovisioning),
            other => Err(Invalid::new(format!("unknown add-on state {other:?}"))),
        }
    }
}

impl fmt::Display for AddonState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An add-on as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addon {
    pub id: Uuid,
    /// Globally unique (`postgresql-curved-12345`).
    pub name: String,
    /// The app that created it (Heroku's billing app).
    pub app_id: Uuid,
    pub app_name: String,
    /// The canonical service name (`wharf-postgresql`).
    pub service: String,
    /// The plan without its service prefix (`mini`).
    pub plan: String,
    pub state: AddonState,
    /// The provider's opaque state, JSON text.
    pub provider_state: String,
    /// The provider's config by suffix (`URL`). Holds credentials: never shown but through the
    /// attached apps' config vars.
    pub config: BTreeMap<String, String>,
    /// The first attachment's name, chosen when the add-on was created.
    pub attachment_name: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Addon {
    /// `service:plan`, as releases list add-ons.
    pub fn plan_name(&self) -> String {
        format!("{}:{}", self.service, self.plan)
    }

    /// The config vars an attachment named `attachment` gives its app.
    pub fn config_vars(&self, attachment: &str) -> BTreeMap<String, String> {
        self.config
            .iter()
            .map(|(suffix, value)| (config_var_name(attachment, suffix), value.clone()))
            .collect()
    }

    /// The names of those config vars, without values.
    pub fn config_var_names(&self, attachment: &str) -> Vec<String> {
        self.config
            .keys()
            .map(|suffix| config_var_name(attachment, suffix))
            .collect()
    }
}

/// An add-on attached to an app under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonAttachment {
    pub id: Uuid,
    pub name: String,
    pub app_id: Uuid,
    pub app_name: String,
    pub addon_id: Uuid,
    pub addon_name: String,
    pub addon_app_id: Uuid,
    pub addon_app_name: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// `DATABASE` + `URL` = `DATABASE_URL`.
pub fn config_var_name(attachment: &str, suffix: &str) -> String {
    format!("{attachment}_{suffix}")
}

/// Validates an attachment name (`--as`): letters, digits and underscores, starting with a
/// letter; lowercase letters are taken as uppercase, as config var names are.
pub fn parse_attachment_name(raw: &str) -> Result<String, Invalid> {
    let name = raw.trim().to_ascii_uppercase();
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Invalid::new(format!(
            "Attachment name {raw:?} is invalid: use letters, digits and underscores, starting \
             with a letter (e.g. DATABASE or CACHE)"
        )));
    }
    Ok(name)
}

/// Colors for the names of further attachments of one service, as Heroku names them.
const COLORS: &[&str] = &[
    "AMBER", "BLACK", "BLUE", "BRONZE", "BROWN", "CHARCOAL", "COBALT", "COPPER", "CRIMSON", "CYAN",
    "GOLD", "GRAY", "GREEN", "IVORY", "JADE", "LIME", "MAGENTA", "MAROON", "NAVY", "OLIVE", "ONYX",
    "ORANGE", "PINK", "PURPLE", "RED", "ROSE", "SILVER", "TEAL", "WHITE", "YELLOW",
];

/// The name a new add-on's attachment takes when the user names none: the service's default
/// (`DATABASE`) while it is free on the app, else `<prefix>_<COLOR>` with the first free color
/// (`HEROKU_POSTGRESQL_AMBER`), else `<prefix>_<n>`.
pub fn default_attachment_name(default: &str, prefix: &str, taken: &[String]) -> String {
    let free = |name: &String| !taken.contains(name);
    std::iter::once(default.to_owned())
        .chain(COLORS.iter().map(|color| format!("{prefix}_{color}")))
        .chain((1..).map(|n| format!("{prefix}_{n}")))
        .find(free)
        .expect("an endless list has a free name")
}

/// Words for add-on names: `postgresql-<word>-<number>`.
const WORDS: &[&str] = &[
    "amber",
    "angular",
    "clear",
    "cubic",
    "curved",
    "deep",
    "elegant",
    "flat",
    "fluffy",
    "graceful",
    "horizontal",
    "lively",
    "metric",
    "opaque",
    "parallel",
    "rigid",
    "round",
    "shallow",
    "silent",
    "solid",
    "spherical",
    "tapered",
    "transparent",
    "vertical",
];

/// An add-on name from a prefix and two random numbers (`postgresql-curved-12345`).
pub fn addon_name(prefix: &str, word: u32, number: u32) -> String {
    let word = WORDS[word as usize % WORDS.len()];
    format!("{prefix}-{word}-{}", 10_000 + number % 90_000)
}

/// The release description when an attachment gives an app its config vars.
pub fn attach_description(attachment: &str, addon: &str) -> String {
    format!("Attach {attachment} (@ref:{addon})")
}

/// The release description when an attachment's config vars leave an app.
pub fn detach_description(attachment: &str, addon: &str) -> String {
    format!("Detach {attachment} (@ref:{addon})")
}

/// The release description when an add-on's credentials change.
pub fn rotate_description(attachment: &str, addon: &str) -> String {
    format!("Update {attachment} by {addon} (credentials rotated)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names() {
        let check = |raw: &str, expected: Result<&str, ()>| {
            assert_eq!(
                parse_attachment_name(raw).map_err(|_| ()),
                expected.map(str::to_owned),
                "{raw}"
            );
        };
        check("DATABASE", Ok("DATABASE"));
        check("cache", Ok("CACHE"));
        check("HEROKU_POSTGRESQL_AMBER", Ok("HEROKU_POSTGRESQL_AMBER"));
        check("1DB", Err(()));
        check("MY-DB", Err(()));
        check("", Err(()));
    }

    #[test]
    fn default_attachment_names_take_colors_after_the_default() {
        let taken = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let check = |names: &[&str], expected: &str| {
            assert_eq!(
                default_attachment_name("DATABASE", "HEROKU_POSTGRESQL", &taken(names)),
                expected
            );
        };
        check(&[], "DATABASE");
        check(&["REDIS"], "DATABASE");
        check(&["DATABASE"], "HEROKU_POSTGRESQL_AMBER");
        check(
            &["DATABASE", "HEROKU_POSTGRESQL_AMBER"],
            "HEROKU_POSTGRESQL_BLACK",
        );
        let mut all: Vec<String> = COLORS
            .iter()
            .map(|c| format!("HEROKU_POSTGRESQL_{c}"))
            .collect();
        all.push("DATABASE".into());
        assert_eq!(
            default_attachment_name("DATABASE", "HEROKU_POSTGRESQL", &all),
            "HEROKU_POSTGRESQL_1"
        );
    }

    #[test]
    fn config_vars_follow_the_attachment_name() {
        let addon = Addon {
            id: Uuid::nil(),
            name: "redis-round-12345".into(),
            app_id: Uuid::nil(),
            app_name: "app".into(),
            service: "wharf-redis".into(),
            plan: "mini".into(),
            state: AddonState::Provisioned,
            provider_state: "{}".into(),
            config: BTreeMap::from([
                ("URL".into(), "redis://u:p@h:1".into()),
                ("KEY_PREFIX".into(), "addon_x:".into()),
            ]),
            attachment_name: "REDIS".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            addon.config_var_names("CACHE"),
            vec!["CACHE_KEY_PREFIX".to_owned(), "CACHE_URL".to_owned()]
        );
        assert_eq!(addon.config_vars("REDIS")["REDIS_URL"], "redis://u:p@h:1");
        assert_eq!(addon.plan_name(), "wharf-redis:mini");
    }

    #[test]
    fn addon_names() {
        assert_eq!(addon_name("postgresql", 4, 2345), "postgresql-curved-12345");
        assert_eq!(addon_name("redis", 0, 89_999), "redis-amber-99999");
        assert_eq!(addon_name("redis", 24, 90_000), "redis-amber-10000");
    }
}
