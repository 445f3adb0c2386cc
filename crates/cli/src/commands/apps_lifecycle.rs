//! `apps:create`, `apps:destroy` and `git:remote`: making and removing apps, and the git
//! remotes that point at them (with the credential helper that lets `git push` use the API
//! key).

use anyhow::{bail, Result};
use wharf_api_types::{App, AppCreate};

use crate::args::{AppArgs, AppsCreateArgs, AppsDestroyArgs, GitRemoteArgs};
use crate::client::decode;
use crate::git;
use crate::prompt;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn create(args: AppsCreateArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let client = settings.client()?;
    let body = AppCreate {
        name: args.name.clone(),
        ..AppCreate::default()
    };
    let request = client.post(&["apps"], &body);
    let value = if args.json {
        request.await?
    } else {
        let label = match &args.name {
            Some(name) => format!("Creating {}", ui.app(name)),
            None => "Creating app".to_string(),
        };
        ui.action(&label, request).await?
    };
    let app: App = decode(value.clone(), "the new app")?;
    if args.json {
        ui.json(&value)?;
    } else {
        match args.name {
            Some(_) => ui.line("done")?,
            None => ui.line(format!("done, {}", ui.app(&app.name)))?,
        }
        let web_url = app.web_url.as_deref().unwrap_or_default();
        let git_url = app.git_url.as_deref().unwrap_or_default();
        ui.line(format!("{web_url} | {git_url}"))?;
    }
    if let Some(git_url) = app.git_url.as_deref() {
        if !args.no_remote && git::inside_work_tree() {
            add_remote(&args.remote, git_url, &app.name, &settings.api_url);
        }
    }
    Ok(())
}

/// Adds the remote for a new app, leaving an existing remote of that name alone (it may
/// point at another app). The app exists by now, so problems are warnings, not failures.
fn add_remote(remote: &str, git_url: &str, app: &str, api_url: &str) {
    match git::remote_url(remote) {
        Some(existing) if existing != git_url => eprintln!(
            " ›   Warning: git remote {remote} already points at {existing}; \
             run `wharf git:remote -a {app} -r {remote}` to change it"
        ),
        Some(_) => {}
        None => match git::set_remote(remote, git_url) {
            Ok(()) => set_credential_helper(api_url),
            Err(error) => eprintln!(" ›   Warning: could not add git remote {remote}: {error:#}"),
        },
    }
}

/// Lets `git push` authenticate with the API key; without it git asks for a password, so a
/// failure is a warning.
fn set_credential_helper(api_url: &str) {
    if let Err(error) = git::set_credential_helper(api_url) {
        eprintln!(" ›   Warning: could not set up git credentials for {api_url}: {error:#}");
    }
}

pub async fn destroy(args: AppsDestroyArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => settings.app(&args.app)?,
    };
    prompt::confirm_app(
        &name,
        args.confirm,
        &format!("This will delete {} including all add-ons.", ui.app(&name)),
    )?;
    let client = settings.client()?;
    let app: App = decode(client.get(&["apps", &name]).await?, "the app")?;
    let label = format!("Destroying {} (including all add-ons)", ui.app(&name));
    ui.action(&label, client.delete(&["apps", &name])).await?;
    ui.line("done")?;
    if let Some(git_url) = app.git_url.as_deref() {
        if git::inside_work_tree() {
            if let Err(error) = git::remove_remotes_to(git_url) {
                eprintln!(" ›   Warning: could not remove git remotes to {git_url}: {error:#}");
            }
        }
    }
    Ok(())
}

pub async fn git_remote(args: GitRemoteArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let app_args = AppArgs {
        app: args.app,
        remote: Some(args.remote.clone()),
    };
    let name = settings.app(&app_args)?;
    let app: App = decode(settings.client()?.get(&["apps", &name]).await?, "the app")?;
    let Some(git_url) = app.git_url else {
        bail!("{name} has no git URL");
    };
    git::set_remote(&args.remote, &git_url)?;
    set_credential_helper(&settings.api_url);
    ui.line(format!("set git remote {} to {git_url}", args.remote))
}
