//! `ps:scale` and `ps:type`: dyno quantities and sizes in the formation.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use wharf_api_types::{Formation, FormationBatchUpdate, FormationUpdate, QuantityValue};

use crate::args::{PsScaleArgs, PsTypeArgs};
use crate::client::decode;
use crate::scale::{ScaleChange, TypeChange};
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn scale(args: PsScaleArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    if args.changes.is_empty() {
        let value = client.get(&["apps", &name, "formation"]).await?;
        if args.json {
            return ui.json(&value);
        }
        let formation: Vec<Formation> = decode(value, "the formation")?;
        if formation.is_empty() {
            bail!("No process types on {name}");
        }
        return ui.line(formation_summary(formation));
    }
    let body = FormationBatchUpdate {
        updates: args.changes.iter().map(scale_update).collect(),
    };
    let path = ["apps", &name, "formation"];
    let request = client.patch(&path, &body);
    if args.json {
        return ui.json(&request.await?);
    }
    let value = ui.action("Scaling dynos", request).await?;
    let formation: Vec<Formation> = decode(value, "the formation")?;
    ui.line(format!(
        "done, now running {}",
        scaled(&args.changes, &formation)
    ))
}

pub async fn resize(args: PsTypeArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    if !args.changes.is_empty() {
        let needs_types = args
            .changes
            .iter()
            .any(|change| matches!(change, TypeChange::All { .. }));
        let types: Vec<String> = if needs_types {
            let formation: Vec<Formation> = decode(
                client.get(&["apps", &name, "formation"]).await?,
                "the formation",
            )?;
            if formation.is_empty() {
                bail!("No process types on {name}");
            }
            formation
                .into_iter()
                .map(|process| process.process_type)
                .collect()
        } else {
            Vec::new()
        };
        let body = FormationBatchUpdate {
            updates: type_updates(&args.changes, &types),
        };
        let path = ["apps", &name, "formation"];
        let request = client.patch(&path, &body);
        if args.json {
            request.await?;
        } else {
            let label = format!("Scaling dynos on {}", ui.app(&name));
            ui.action(&label, request).await?;
            ui.line("done")?;
        }
    }
    let value = client.get(&["apps", &name, "formation"]).await?;
    if args.json {
        return ui.json(&value);
    }
    let mut formation: Vec<Formation> = decode(value, "the formation")?;
    if formation.is_empty() {
        bail!("No process types on {name}");
    }
    formation.sort_by(|left, right| left.process_type.cmp(&right.process_type));
    let mut rows = vec![vec![
        "Type".to_string(),
        "Size".to_string(),
        "Qty".to_string(),
    ]];
    rows.extend(formation.into_iter().map(|process| {
        vec![
            process.process_type,
            process.size,
            process.quantity.to_string(),
        ]
    }));
    ui.table(&rows)
}

fn scale_update(change: &ScaleChange) -> FormationUpdate {
    FormationUpdate {
        process_type: Some(change.process_type.clone()),
        quantity: Some(QuantityValue::Text(change.quantity.clone())),
        size: change.size.clone(),
        dyno_size: None,
    }
}

/// One size update per process type, the last argument for a type winning; a bare size
/// applies to all of `types`.
fn type_updates(changes: &[TypeChange], types: &[String]) -> Vec<FormationUpdate> {
    let mut sizes: BTreeMap<&str, &str> = BTreeMap::new();
    for change in changes {
        match change {
            TypeChange::One { process_type, size } => {
                sizes.insert(process_type, size);
            }
            TypeChange::All { size } => {
                for process_type in types {
                    sizes.insert(process_type, size);
                }
            }
        }
    }
    sizes
        .into_iter()
        .map(|(process_type, size)| FormationUpdate {
            process_type: Some(process_type.to_string()),
            quantity: None,
            size: Some(size.to_string()),
            dyno_size: None,
        })
        .collect()
}

/// `web=1:Basic worker=0:Basic`, sorted by type.
fn formation_summary(mut formation: Vec<Formation>) -> String {
    formation.sort_by(|left, right| left.process_type.cmp(&right.process_type));
    formation
        .iter()
        .map(|process| {
            format!(
                "{}={}:{}",
                process.process_type, process.quantity, process.size
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `web at 2:Basic, worker at 1:Standard-2X`: the requested types, in the order asked, as
/// the server now has them.
fn scaled(changes: &[ScaleChange], formation: &[Formation]) -> String {
    let mut shown: Vec<&str> = Vec::new();
    let mut parts = Vec::new();
    for change in changes {
        if shown.contains(&change.process_type.as_str()) {
            continue;
        }
        shown.push(&change.process_type);
        if let Some(process) = formation
            .iter()
            .find(|process| process.process_type == change.process_type)
        {
            parts.push(format!(
                "{} at {}:{}",
                process.process_type, process.quantity, process.size
            ));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_updates_cover_each_type_once() {
        let check = |changes: &[TypeChange], types: &[&str], expected: &[(&str, &str)]| {
            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            let updates: Vec<(String, String)> = type_updates(changes, &types)
                .into_iter()
                .map(|update| {
                    (
                        update.process_type.unwrap_or_default(),
                        update.size.unwrap_or_default(),
                    )
                })
                .collect();
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(t, s)| (t.to_string(), s.to_string()))
                .collect();
            assert_eq!(updates, expected, "{changes:?}");
        };
        let one = |process_type: &str, size: &str| TypeChange::One {
            process_type: process_type.into(),
            size: size.into(),
        };
        let all = |size: &str| TypeChange::All { size: size.into() };
        check(&[one("web", "Standard-2X")], &[], &[("web", "Standard-2X")]);
        check(
            &[all("Basic"), one("web", "Performance-M")],
            &["worker", "web"],
            &[("web", "Performance-M"), ("worker", "Basic")],
        );
        check(&[one("web", "A"), one("web", "B")], &[], &[("web", "B")]);
    }
}
