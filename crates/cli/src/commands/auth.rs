//! `login`, `logout`, `auth:whoami` and `users:create`.

use anyhow::Result;
use wharf_api_types::{
    Account, OAuthAuthorization, OAuthAuthorizationCreate, UserCreate, UserCreated,
};

use crate::args::{JsonArgs, LoginArgs, UsersCreateArgs};
use crate::client::{decode, Auth, Client};
use crate::credentials;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn login(args: LoginArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let url = settings.api_url()?;
    let netrc = settings.netrc_path()?;
    let email = match args.email {
        Some(email) => email,
        None => prompt::ask("Email: ", false)?,
    };
    let key = match args.api_key {
        Some(key) => key,
        None => prompt::ask("API key: ", true)?,
    };
    let client = Client::new(
        url.clone(),
        Auth::Basic {
            user: email,
            password: key,
        },
    )?;
    let body = OAuthAuthorizationCreate {
        description: Some(format!("wharf CLI login from {}", hostname())),
        expires_in: None,
        scope: Some(vec!["global".to_string()]),
    };
    let value = client.post(&["oauth", "authorizations"], &body).await?;
    let authorization: OAuthAuthorization = decode(value, "the authorization")?;
    credentials::save(
        &netrc,
        &credentials::netrc_machine(&url),
        &authorization.user.email,
        &authorization.access_token.token,
    )?;
    ui.line(format!("Logged in as {}", authorization.user.email))
}

pub async fn logout(settings: &Settings, ui: &mut Ui) -> Result<()> {
    let url = settings.api_url()?;
    ui.action("Logging out", async {
        credentials::forget(&settings.netrc_path()?, &credentials::netrc_machine(&url))
    })
    .await?;
    ui.line("done")?;
    if settings.api_key.is_some() {
        eprintln!(" ›   Warning: WHARF_API_KEY is set; commands keep using it until you unset it");
    }
    Ok(())
}

pub async fn whoami(args: JsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let value = settings.client()?.get(&["account"]).await?;
    if args.json {
        return ui.json(&value);
    }
    let account: Account = decode(value, "the account")?;
    ui.line(account.email)
}

pub async fn users_create(args: UsersCreateArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let body = UserCreate { email: args.email };
    let value = settings.client()?.post(&["users"], &body).await?;
    if args.json {
        return ui.json(&value);
    }
    let created: UserCreated = decode(value, "the new user")?;
    ui.line(format!("Created user {}", created.account.email))?;
    ui.line(format!("API key: {}", created.api_key))
}

/// This machine's name, for the key's description.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unknown host".to_string())
}
