//! `access`, `access:add` and `access:remove`: an app's owner and collaborators.

use anyhow::Result;
use wharf_api_types::{App, Collaborator, CollaboratorCreate};

use crate::args::{AccessChangeArgs, AppJsonArgs};
use crate::client::decode;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn list(args: AppJsonArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let app_path = ["apps", &name];
    let collaborators_path = ["apps", &name, "collaborators"];
    let (app, collaborators) = tokio::join!(client.get(&app_path), client.get(&collaborators_path));
    let collaborators = collaborators?;
    if args.json {
        return ui.json(&collaborators);
    }
    let app: App = decode(app?, "the app")?;
    let mut collaborators: Vec<Collaborator> = decode(collaborators, "the collaborators")?;
    collaborators.sort_by(|left, right| left.user.email.cmp(&right.user.email));
    let mut rows = vec![vec![app.owner.email.clone(), "owner".to_string()]];
    rows.extend(
        collaborators
            .into_iter()
            .filter(|collaborator| collaborator.user.email != app.owner.email)
            .map(|collaborator| {
                let role = collaborator.role.unwrap_or_else(|| "collaborator".into());
                vec![collaborator.user.email, role]
            }),
    );
    ui.line(ui.header(&format!("{name} Access List")))?;
    ui.table(&rows)
}

pub async fn add(args: AccessChangeArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let body = CollaboratorCreate {
        user: args.email.clone(),
        silent: None,
    };
    let label = format!("Adding {} access to the app {name}", args.email);
    ui.action(
        &label,
        client.post(&["apps", &name, "collaborators"], &body),
    )
    .await?;
    ui.line("done")
}

pub async fn remove(args: AccessChangeArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let label = format!("Removing {} access from the app {name}", args.email);
    let path = ["apps", &name, "collaborators", &args.email];
    ui.action(&label, client.delete(&path)).await?;
    ui.line("done")
}
