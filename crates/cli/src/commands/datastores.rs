//! What `pg:*` and `redis:*` share: which of the app's add-ons a command is about (the one the
//! user named, else the app's only one of the service, else the one attached as `DATABASE` or
//! `REDIS`), the config var its dynos reach it by, and printing its info rows.

use anyhow::{bail, Context, Result};
use clap::Args;
use wharf_api_types::{Addon, AddonInfoRow};

use crate::args::AppArgs;
use crate::client::{decode, Client};
use crate::commands::run::{self, OneOff};
use crate::settings::Settings;
use crate::ui::Ui;

/// The add-on services these commands work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postgres,
    Redis,
}

impl Service {
    /// Wharf's name for the service, then Heroku's (an alias that resolves to it).
    fn names(self) -> [&'static str; 2] {
        match self {
            Service::Postgres => ["wharf-postgresql", "heroku-postgresql"],
            Service::Redis => ["wharf-redis", "heroku-redis"],
        }
    }

    /// The attachment name an add-on of the service gets by default.
    pub fn default_attachment(self) -> &'static str {
        match self {
            Service::Postgres => "DATABASE",
            Service::Redis => "REDIS",
        }
    }

    /// What users call one, in messages.
    fn noun(self) -> &'static str {
        match self {
            Service::Postgres => "Postgres database",
            Service::Redis => "Redis add-on",
        }
    }

    fn offers(self, addon: &Addon) -> bool {
        self.names().contains(&addon.addon_service.name.as_str())
    }
}

/// `[DATABASE]` and `-a APP`, the arguments of most of these commands.
#[derive(Debug, Clone, Args)]
pub struct DatastoreArgs {
    /// The add-on: its name, or the name it is attached as (DATABASE, REDIS_URL)
    /// [default: the app's only one, else the one attached as DATABASE or REDIS]
    #[arg(value_name = "DATABASE")]
    pub database: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
}

impl DatastoreArgs {
    /// The app, a client, and the add-on of `service` these arguments name.
    pub async fn resolve(
        &self,
        service: Service,
        settings: &Settings,
    ) -> Result<(String, Client, Datastore)> {
        let app = settings.app(&self.app)?;
        let client = settings.client()?;
        let datastore = find(&client, service, &app, self.database.as_deref()).await?;
        Ok((app, client, datastore))
    }
}

/// An add-on a command is about, as the app sees it.
#[derive(Debug, Clone)]
pub struct Datastore {
    pub addon: Addon,
    /// The config var the app's dynos reach it by (`DATABASE_URL`), if it is attached to the
    /// app.
    pub url_var: Option<String>,
}

impl Datastore {
    /// The config var, or an error saying the add-on is not attached to `app`.
    pub fn require_url_var(&self, app: &str) -> Result<&str> {
        self.url_var.as_deref().with_context(|| {
            format!(
                "{} is not attached to {app}: attach it with `wharf addons:attach {} -a {app}`",
                self.addon.name, self.addon.name
            )
        })
    }

    /// What the app calls it: its attachment name (`DATABASE`), else the add-on's name.
    pub fn label(&self) -> &str {
        self.url_var
            .as_deref()
            .and_then(|var| var.strip_suffix("_URL"))
            .unwrap_or(&self.addon.name)
    }

    /// Its config vars ending in `_URL` on this app (`DATABASE_URL, HEROKU_POSTGRESQL_AMBER_URL`),
    /// else its name.
    pub fn header(&self) -> String {
        let vars = url_vars(&self.addon);
        match vars.is_empty() {
            true => self.addon.name.clone(),
            false => vars.join(", "),
        }
    }
}

fn url_vars(addon: &Addon) -> Vec<&str> {
    addon
        .config_vars
        .iter()
        .map(String::as_str)
        .filter(|var| var.ends_with("_URL"))
        .collect()
}

/// `DATABASE_URL` and `database` both name the attachment `DATABASE`.
fn attachment_of(requested: &str) -> String {
    let upper = requested.to_ascii_uppercase();
    upper.strip_suffix("_URL").unwrap_or(&upper).to_owned()
}

/// Whether `var` can stand in a shell word as `"$var"` with nothing but its value expanded.
fn is_shell_name(var: &str) -> bool {
    var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Picks the add-on among the app's `addons`: the one `requested` names (its name, id or an
/// attachment name on this app, with or without `_URL`); without a request, the only one of
/// the service, else the one attached under the service's default name. Pure, so that every
/// case is a unit test.
pub fn choose(
    addons: &[Addon],
    service: Service,
    app: &str,
    requested: Option<&str>,
) -> Result<Datastore> {
    let candidates: Vec<&Addon> = addons.iter().filter(|a| service.offers(a)).collect();
    let attachment = attachment_of(requested.unwrap_or(service.default_attachment()));
    let attached_as = |addon: &Addon| {
        let var = format!("{attachment}_URL");
        addon.config_vars.contains(&var).then_some(var)
    };
    let addon = match requested {
        Some(requested) => {
            let found = addons.iter().find(|addon| {
                addon.name == requested || addon.id == requested || attached_as(addon).is_some()
            });
            let addon = found.with_context(|| {
                format!(
                    "Couldn't find the add-on {requested} on {app}: `wharf addons -a {app}` \
                     lists its add-ons"
                )
            })?;
            if !service.offers(addon) {
                bail!(
                    "{} is a {} add-on, not a {}",
                    addon.name,
                    addon.addon_service.name,
                    service.noun()
                );
            }
            addon
        }
        None => match candidates.as_slice() {
            [] => bail!(
                "{app} has no {}: create one with `wharf addons:create {} -a {app}`",
                service.noun(),
                service.names()[1]
            ),
            [only] => only,
            several => *several
                .iter()
                .find(|addon| attached_as(addon).is_some())
                .with_context(|| several_message(several, service, app))?,
        },
    };
    let url_var = attached_as(addon)
        .or_else(|| {
            let default = format!("{}_URL", service.default_attachment());
            addon.config_vars.contains(&default).then_some(default)
        })
        .or_else(|| url_vars(addon).first().map(|var| (*var).to_owned()));
    if let Some(var) = &url_var {
        // The name goes into a shell command inside the dyno: only a plain name may.
        if !is_shell_name(var) {
            bail!("the server named a config var {var:?} that is not a plain name");
        }
    }
    Ok(Datastore {
        addon: addon.clone(),
        url_var,
    })
}

fn several_message(several: &[&Addon], service: Service, app: &str) -> String {
    let mut message = format!(
        "{app} has {} {}s and none is attached as {}: name one",
        several.len(),
        service.noun(),
        service.default_attachment()
    );
    for addon in several {
        let vars = url_vars(addon);
        let attached = match vars.is_empty() {
            true => "not attached to this app".to_owned(),
            false => vars.join(", "),
        };
        message.push_str(&format!("\n  {} ({attached})", addon.name));
    }
    message
}

/// Every add-on of `service` on the app that is provisioned (others have no data yet), each
/// as [`choose`] would name it; an error if the app has none at all.
pub fn all(addons: &[Addon], service: Service, app: &str) -> Result<Vec<Datastore>> {
    let candidates: Vec<&Addon> = addons.iter().filter(|a| service.offers(a)).collect();
    if candidates.is_empty() {
        // The same answer as when asking for the app's only one.
        choose(addons, service, app, None)?;
    }
    candidates
        .into_iter()
        .filter(|addon| addon.state == "provisioned")
        .map(|addon| choose(addons, service, app, Some(&addon.id)))
        .collect()
}

/// The app's add-ons, as `GET /apps/{app}/addons` lists them.
pub async fn addons_of(client: &Client, app: &str) -> Result<Vec<Addon>> {
    decode(client.get(&["apps", app, "addons"]).await?, "the add-ons")
}

/// The add-on of `service` that `requested` names on `app` (see [`choose`]).
pub async fn find(
    client: &Client,
    service: Service,
    app: &str,
    requested: Option<&str>,
) -> Result<Datastore> {
    let addons = addons_of(client, app).await?;
    choose(&addons, service, app, requested)
}

/// `pg:psql` and `redis:cli`: runs the client `command` makes for the config var holding the
/// add-on's URL in a one-off dyno attached to the terminal, so that the URL is read there.
pub async fn attach_client(
    app: &str,
    datastore: &Datastore,
    command: impl FnOnce(&str) -> String,
    settings: &Settings,
    ui: &mut Ui,
) -> Result<()> {
    let url_var = datastore.require_url_var(app)?;
    let one_off = OneOff {
        app,
        command: command(url_var),
        env: &[],
        size: None,
        no_tty: false,
        label: format!(
            "Connecting to {} ({url_var}) on {}",
            datastore.addon.name,
            ui.app(app)
        ),
    };
    run::attached(one_off, settings, ui).await
}

/// `pg:info` and `redis:info`: `=== header` then the rows, or the API's JSON.
pub async fn show_info(
    client: &Client,
    app: &str,
    datastore: &Datastore,
    header: &str,
    json: bool,
    ui: &mut Ui,
) -> Result<()> {
    let raw = client
        .get(&["apps", app, "addons", &datastore.addon.name, "info"])
        .await?;
    if json {
        return ui.json(&raw);
    }
    let rows: Vec<AddonInfoRow> = decode(raw, "the add-on's info")?;
    ui.line(ui.header(header))?;
    let pairs: Vec<(String, String)> = rows.into_iter().map(|row| (row.name, row.value)).collect();
    ui.key_values(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_api_types::{AddonPlanRef, NamedRef, Price};

    fn addon(name: &str, service: &str, config_vars: &[&str]) -> Addon {
        Addon {
            id: format!("id-{name}"),
            name: name.to_owned(),
            app: NamedRef {
                id: "a1".into(),
                name: "myapp".into(),
            },
            addon_service: NamedRef {
                id: "s1".into(),
                name: service.to_owned(),
            },
            plan: AddonPlanRef {
                id: "p1".into(),
                name: format!("{service}:mini"),
                price: Price::free(),
            },
            billed_price: None,
            state: "provisioned".into(),
            config_vars: config_vars.iter().map(|v| (*v).to_owned()).collect(),
            provision_message: None,
            provider_id: "x".into(),
            web_url: None,
            actions: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    /// The add-on and config var chosen, or the start of the error.
    fn check(addons: &[Addon], service: Service, requested: Option<&str>, expected: &str) {
        let outcome = match choose(addons, service, "myapp", requested) {
            Ok(chosen) => format!(
                "{} {}",
                chosen.addon.name,
                chosen.url_var.as_deref().unwrap_or("-")
            ),
            Err(error) => format!("error: {error}"),
        };
        assert!(
            outcome.starts_with(expected),
            "{requested:?}: {outcome:?} should start with {expected:?}"
        );
    }

    #[test]
    fn the_only_one_or_the_default_attachment_or_the_named_one() {
        let pg = |name, vars: &[&str]| addon(name, "wharf-postgresql", vars);
        let redis = addon(
            "redis-a",
            "heroku-redis",
            &["REDIS_URL", "REDIS_KEY_PREFIX"],
        );
        let one = [pg("pg-a", &["DATABASE_URL"]), redis.clone()];
        check(&one, Service::Postgres, None, "pg-a DATABASE_URL");
        check(&one, Service::Redis, None, "redis-a REDIS_URL");
        check(
            &one,
            Service::Postgres,
            Some("DATABASE_URL"),
            "pg-a DATABASE_URL",
        );
        check(
            &one,
            Service::Postgres,
            Some("database"),
            "pg-a DATABASE_URL",
        );
        check(
            &one,
            Service::Postgres,
            Some("id-pg-a"),
            "pg-a DATABASE_URL",
        );
        check(
            &one,
            Service::Postgres,
            Some("REDIS"),
            "error: redis-a is a heroku-redis add-on, not a Postgres database",
        );
        check(
            &one,
            Service::Postgres,
            Some("NOPE"),
            "error: Couldn't find the add-on NOPE on myapp",
        );

        let several = [
            pg("pg-b", &["HEROKU_POSTGRESQL_AMBER_URL"]),
            pg("pg-a", &["REPORTS_URL", "DATABASE_URL"]),
            pg("pg-c", &[]),
        ];
        check(&several, Service::Postgres, None, "pg-a DATABASE_URL");
        // Named by an attachment, the add-on is reached by that attachment's var.
        check(
            &several,
            Service::Postgres,
            Some("REPORTS"),
            "pg-a REPORTS_URL",
        );
        check(
            &several,
            Service::Postgres,
            Some("pg-a"),
            "pg-a DATABASE_URL",
        );
        check(
            &several,
            Service::Postgres,
            Some("HEROKU_POSTGRESQL_AMBER"),
            "pg-b HEROKU_POSTGRESQL_AMBER_URL",
        );
        // Owned by the app but not attached to it: found, with no var.
        check(&several, Service::Postgres, Some("pg-c"), "pg-c -");

        let undecided = [pg("pg-b", &["AMBER_URL"]), pg("pg-c", &[])];
        check(
            &undecided,
            Service::Postgres,
            None,
            "error: myapp has 2 Postgres databases and none is attached as DATABASE: name one\n  \
             pg-b (AMBER_URL)\n  pg-c (not attached to this app)",
        );
        check(
            &[redis],
            Service::Postgres,
            None,
            "error: myapp has no Postgres database: create one with \
             `wharf addons:create heroku-postgresql -a myapp`",
        );
        check(
            &[],
            Service::Redis,
            None,
            "error: myapp has no Redis add-on: create one with `wharf addons:create heroku-redis",
        );
    }

    #[test]
    fn a_var_that_is_not_a_plain_name_is_refused() {
        let hostile = [addon("pg-a", "wharf-postgresql", &["X\"; rm -rf /;_URL"])];
        check(&hostile, Service::Postgres, None, "error: the server named");
        assert!(is_shell_name("DATABASE_URL"));
        assert!(is_shell_name("_X1"));
        assert!(!is_shell_name("1X"));
        assert!(!is_shell_name("A-B"));
        assert!(!is_shell_name(""));
    }

    #[test]
    fn labels_and_headers() {
        let attached = Datastore {
            addon: addon("pg-a", "wharf-postgresql", &["DATABASE_URL", "AMBER_URL"]),
            url_var: Some("AMBER_URL".into()),
        };
        assert_eq!(attached.label(), "AMBER");
        assert_eq!(attached.header(), "DATABASE_URL, AMBER_URL");
        assert_eq!(attached.require_url_var("myapp").unwrap(), "AMBER_URL");
        let detached = Datastore {
            addon: addon("pg-c", "wharf-postgresql", &[]),
            url_var: None,
        };
        assert_eq!(detached.label(), "pg-c");
        assert_eq!(detached.header(), "pg-c");
        assert_eq!(
            detached.require_url_var("myapp").unwrap_err().to_string(),
            "pg-c is not attached to myapp: attach it with `wharf addons:attach pg-c -a myapp`"
        );
    }
}
