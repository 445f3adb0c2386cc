//! The pipeline of one build: unpack the source (refusing anything that escapes), drop
//! `.slugignore`d files, pick buildpacks (the app's list, or detection over the built-in ones),
//! run each `bin/compile` with the app's config vars in `ENV_DIR` and a per-app cache, read the
//! last buildpack's `bin/release`, merge the Procfile over its default process types, pack the
//! slug, and create the release (after the release phase, if the slug has one).

use std::path::{Path, PathBuf};

use anyhow::Context;
use uuid::Uuid;
use wharf_model::{ConfigVars, ProcessTypes, ReleaseStatus};
use wharf_slugignore::SlugIgnore;
use wharf_store::{BuildOutcome, NewSlug};
use wharf_tenant_fs::{Kind, TreeDir};

use crate::archive::{pack_slug, unpack, LinkPolicy};
use crate::builder::{BuildRequest, Builder};
use crate::buildpack::{BuildpackSource, BUILTIN};
use crate::log::BuildLog;
use crate::step::{chown_tree, mount, profile_command, StepKind, StepOutput};
use crate::{procfile, release_yaml};

/// Where a runtime step and the compile after it see the server's runtime cache (writable in
/// the runtime step, read-only in compile) and the step's choice (the same).
pub(crate) const RUNTIMES_MOUNT: &str = "/runtimes";
pub(crate) const RUNTIME_MOUNT: &str = "/runtime";

/// The largest Procfile or `.slugignore` the server reads.
const SMALL_FILE_LIMIT: u64 = 256 * 1024;
/// The largest `export` file a buildpack may hand on.
const EXPORT_LIMIT: u64 = 1024 * 1024;

impl Builder {
    /// Everything between the source and the release. Returns the released version.
    pub(crate) async fn compile(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
        outcome: &mut BuildOutcome,
    ) -> anyhow::Result<i64> {
        let config = &self.inner.config;
        let store = &self.inner.store;
        let stack = request.app.build_stack;
        self.build_stack(stack, log).await?;
        log.heading(&format!("Building on the {stack} stack"));
        let app_dir = work.join("app");
        let env_dir = work.join("env");
        let exports_dir = work.join("exports");
        let cache_dir = self.prepare_cache(request.app.id).await?;
        let (archive, limit) = (request.archive.clone(), config.source_limit);
        let unpack_dir = app_dir.clone();
        tokio::task::spawn_blocking(move || {
            unpack(&archive, &unpack_dir, LinkPolicy::StayInside, limit)
        })
        .await
        .context("unpack source")?
        .map_err(|e| anyhow::anyhow!("The source could not be unpacked: {e}"))?;
        let ignore = blocking(app_dir.clone(), apply_slugignore).await?;

        let current = store.current_release(request.app.id).await?;
        let vars = current.config.clone();
        blocking(env_dir.clone(), move |dir| write_env_dir(dir, &vars)).await?;
        // Created empty: export files are added between buildpacks.
        blocking(exports_dir.clone(), |_| Ok(())).await?;
        chown_tree(&app_dir).await?;
        chown_tree(&cache_dir).await?;

        let buildpacks = self.select_buildpacks(build_id, request, work, log).await?;
        outcome.buildpacks = buildpacks.iter().map(|(name, _)| name.clone()).collect();
        for (index, (name, dir)) in buildpacks.iter().enumerate() {
            let mut mounts = vec![
                mount(&app_dir, "/app", false),
                mount(&cache_dir, "/cache", false),
                mount(&env_dir, "/env", true),
                mount(dir, "/buildpack", false),
                mount(&exports_dir, "/exports", true),
            ];
            // Earlier buildpacks' `export` files (copied by the server into a directory of its
            // own, read-only here), sourced before this one compiles.
            let mut script = "set -a; for f in /exports/*; do [ -f \"$f\" ] && . \"$f\"; done; \
                              set +a; "
                .to_owned();
            if let Some(runtime) = self
                .install_runtime(build_id, index, name, dir, &app_dir, request, work, log)
                .await?
            {
                // What the runtime step installed and chose, read-only from here on: app code
                // runs in compile.
                mounts.push(mount(&runtime.runtimes, RUNTIMES_MOUNT, true));
                mounts.push(mount(&runtime.choice, RUNTIME_MOUNT, true));
                script.push_str(&format!(
                    "export WHARF_RUNTIMES_DIR={RUNTIMES_MOUNT} WHARF_RUNTIME_DIR={RUNTIME_MOUNT}; "
                ));
            }
            script.push_str("exec /buildpack/bin/compile /app /cache /env");
            let report = self
                .run_container(
                    &format!("build-{build_id}-compile-{index}"),
                    work,
                    vec!["bash".into(), "-c".into(), script],
                    mounts,
                    request,
                    StepOutput::log(log),
                    StepKind::Build,
                )
                .await?;
            if report.oom_killed {
                anyhow::bail!(
                    "The {name} buildpack ran out of memory (limit {} MB)",
                    config.build_memory_bytes / (1024 * 1024)
                );
            }
            if report.code != 0 {
                anyhow::bail!(
                    "The {name} buildpack failed to compile this app (exit status {})",
                    report.code
                );
            }
            let (from, to) = (dir.clone(), exports_dir.clone());
            let bytes = blocking(from, |buildpack| {
                buildpack
                    .read(Path::new("export"), EXPORT_LIMIT)
                    .map_err(anyhow::Error::new)
            })
            .await
            .with_context(|| format!("The {name} buildpack's export file cannot be used"))?;
            if let Some(bytes) = bytes {
                blocking(to, move |exports| {
                    exports
                        .write_new(Path::new(&format!("{index:02}")), &bytes, 0o644)
                        .map_err(anyhow::Error::new)
                })
                .await
                .context("hand on an export file")?;
            }
        }

        let process_types = self
            .process_types(build_id, request, work, &app_dir, buildpacks.last(), log)
            .await?;
        log.heading("Discovering process types");
        if process_types.is_empty() {
            log.detail("No process types: add a Procfile (`web: <command>`) to run this app");
        } else {
            let names: Vec<_> = process_types.keys().map(String::as_str).collect();
            log.detail(&format!("Procfile declares types -> {}", names.join(", ")));
        }

        log.heading("Compressing...");
        // Packed straight beside the slugs (the work dir may be a capped disk of its own,
        // another filesystem), so that storing it is one rename; start-up removes what a
        // crash left (`leftovers.rs`).
        let partial = config.partial_slug_path(build_id);
        let stored = async {
            // Server path: `<data-dir>/slugs`, the server's own.
            tokio::fs::create_dir_all(partial.parent().context("slugs dir")?).await?;
            let (dir, out, limit) = (app_dir.clone(), partial.clone(), config.slug_limit);
            let packed = tokio::task::spawn_blocking(move || pack_slug(&dir, &ignore, &out, limit))
                .await
                .context("pack slug")?;
            let packed = packed.map_err(|error| anyhow::anyhow!("{error}"))?;
            log.detail(&format!("Done: {}", human_size(packed.size)));
            let slug = store
                .create_slug(
                    request.app.id,
                    NewSlug {
                        process_types: process_types.clone(),
                        commit: request.version.clone(),
                        commit_description: None,
                        buildpack_provided_description: outcome.buildpacks.first().cloned(),
                        stack: stack.to_string(),
                        size: Some(packed.size as i64),
                        checksum: Some(packed.checksum),
                    },
                )
                .await?;
            // Server path: the server's own partial slug to its place, in one directory.
            tokio::fs::rename(&partial, config.slug_path(slug.id))
                .await
                .context("store the slug")?;
            anyhow::Ok(slug)
        }
        .await;
        if stored.is_err() {
            // Server path: the server's own partial slug, if packing got that far.
            let _ = tokio::fs::remove_file(&partial).await;
        }
        let slug = stored?;
        outcome.slug_id = Some(slug.id);

        log.heading("Launching...");
        let description = match &request.version {
            Some(version) => format!("Deploy {}", version.chars().take(7).collect::<String>()),
            None => "Deploy".to_owned(),
        };
        let release_command = process_types.get("release").cloned();
        let status = if release_command.is_some() {
            ReleaseStatus::Pending
        } else {
            ReleaseStatus::Succeeded
        };
        let release = store
            .release_slug(request.app.id, slug.id, &description, status, &request.user)
            .await?;
        outcome.release_id = Some(release.id);
        if let Some(command) = release_command {
            log.heading("Running release command...");
            let config_vars = store
                .release_by_id(request.app.id, release.id)
                .await?
                .map(|r| r.config)
                .unwrap_or_default();
            let report = self
                .run_container(
                    &format!("build-{build_id}-phase"),
                    work,
                    vec!["bash".into(), "-c".into(), profile_command(&command)],
                    vec![mount(&app_dir, "/app", false)],
                    request,
                    StepOutput::log(log),
                    StepKind::ReleasePhase(&config_vars, release.version),
                )
                .await?;
            let succeeded = report.code == 0 && !report.oom_killed;
            store
                .finish_release(
                    request.app.id,
                    release.id,
                    if succeeded {
                        ReleaseStatus::Succeeded
                    } else {
                        ReleaseStatus::Failed
                    },
                )
                .await?;
            if !succeeded {
                anyhow::bail!(
                    "Release v{} failed: its release command exited with status {}; the previous release keeps running",
                    release.version,
                    report.code
                );
            }
        }
        log.detail(&format!("Released v{}", release.version));
        log.detail(&format!("{} deployed to Wharf", request.web_url));
        Ok(release.version)
    }

    /// The app's buildpacks, fetched into the work dir; or the first built-in one whose
    /// `bin/detect` passes.
    async fn select_buildpacks(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        log: &BuildLog,
    ) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let listed = self.inner.store.buildpacks(request.app.id).await?;
        let mut selected = Vec::new();
        if listed.is_empty() {
            for name in BUILTIN {
                let dir = work.join(format!("buildpack-{name}"));
                self.fetch(
                    &BuildpackSource::Builtin(name),
                    &dir,
                    build_id,
                    request,
                    work,
                    log,
                )
                .await?;
                if let Some(detected) = self
                    .detect(build_id, request, work, &dir, name, log)
                    .await?
                {
                    log.heading(&format!("{detected} app detected"));
                    selected.push((name.to_string(), dir));
                    return Ok(selected);
                }
            }
            anyhow::bail!(
                "No default language could be detected for this app: add a Procfile, \
                 Gemfile, requirements.txt, package.json, go.mod or index.html, or set a \
                 buildpack with `wharf buildpacks:add`"
            );
        }
        for (index, url) in listed.iter().enumerate() {
            let source = BuildpackSource::parse(url).map_err(anyhow::Error::msg)?;
            let dir = work.join(format!("buildpack-{index}"));
            self.fetch(&source, &dir, build_id, request, work, log)
                .await
                .with_context(|| format!("buildpack {url}"))?;
            match self
                .detect(build_id, request, work, &dir, &format!("{index}"), log)
                .await?
            {
                Some(detected) => log.heading(&format!("{detected} app detected")),
                None => anyhow::bail!("App not compatible with buildpack: {url}"),
            }
            selected.push((url.clone(), dir));
        }
        Ok(selected)
    }

    /// Runs `bin/detect`; its output names what it found.
    async fn detect(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        buildpack_dir: &Path,
        label: &str,
        log: &BuildLog,
    ) -> anyhow::Result<Option<String>> {
        let silent = BuildLog::create(&work.join(format!("detect-{label}.log")))?;
        let report = self
            .run_container(
                &format!("build-{build_id}-detect-{label}"),
                work,
                vec!["/buildpack/bin/detect".into(), "/app".into()],
                vec![
                    mount(&work.join("app"), "/app", true),
                    mount(buildpack_dir, "/buildpack", true),
                ],
                request,
                StepOutput {
                    stdout: &silent,
                    stderr: log,
                },
                StepKind::Build,
            )
            .await?;
        let output = String::from_utf8_lossy(&silent.contents())
            .trim()
            .to_owned();
        Ok((report.code == 0).then(|| {
            if output.is_empty() {
                label.to_owned()
            } else {
                output.lines().last().unwrap_or(label).to_owned()
            }
        }))
    }

    /// The Procfile's process types over the last buildpack's defaults.
    async fn process_types(
        &self,
        build_id: Uuid,
        request: &BuildRequest,
        work: &Path,
        app_dir: &Path,
        last: Option<&(String, PathBuf)>,
        log: &BuildLog,
    ) -> anyhow::Result<ProcessTypes> {
        let mut types = ProcessTypes::new();
        if let Some((name, dir)) = last {
            // Whatever `bin/release` is (a link inside the buildpack is fine), it only runs in
            // the container; the server reads nothing of it.
            let release = blocking(dir.clone(), |buildpack| {
                buildpack
                    .kind(Path::new("bin/release"))
                    .map_err(anyhow::Error::new)
            })
            .await?;
            if release.is_some() {
                let output = BuildLog::create(&work.join("release.yml"))?;
                let report = self
                    .run_container(
                        &format!("build-{build_id}-release"),
                        work,
                        vec!["/buildpack/bin/release".into(), "/app".into()],
                        vec![mount(app_dir, "/app", true), mount(dir, "/buildpack", true)],
                        request,
                        StepOutput {
                            stdout: &output,
                            stderr: log,
                        },
                        StepKind::Build,
                    )
                    .await?;
                if report.code != 0 {
                    anyhow::bail!(
                        "The {name} buildpack's bin/release failed (exit status {})",
                        report.code
                    );
                }
                let info = release_yaml::parse(&String::from_utf8_lossy(&output.contents()))
                    .map_err(|e| anyhow::anyhow!("The {name} buildpack's {e}"))?;
                types.extend(info.default_process_types);
            }
        }
        let procfile = blocking(app_dir.to_owned(), |app| {
            app.read_string(Path::new("Procfile"), SMALL_FILE_LIMIT)
                .map_err(anyhow::Error::new)
        })
        .await
        .context("The app's Procfile cannot be used")?;
        if let Some(text) = procfile {
            types.extend(procfile::parse(&text)?);
        }
        if types.is_empty() {
            log.detail("No Procfile found");
        }
        Ok(types)
    }
}

/// Runs `work` on the tenant's directory `dir` (opened, or created when missing, by the
/// server) on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    dir: PathBuf,
    work: impl FnOnce(&TreeDir) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(move || work(&TreeDir::create(&dir)?))
        .await
        .context("file task failed")?
}

/// Removes `dir`, a directory tree whose place the server chose, never following a link in it.
pub(crate) async fn remove_dir(dir: PathBuf) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || wharf_tenant_fs::remove_tree(&dir))
        .await
        .context("file task failed")?
        .map_err(anyhow::Error::new)
}

/// Reads `.slugignore` and removes what it names from the app. Returns the rules, which
/// packing the slug applies again to what the build added.
fn apply_slugignore(app: &TreeDir) -> anyhow::Result<SlugIgnore> {
    let text = app
        .read_string(Path::new(wharf_slugignore::FILE_NAME), SMALL_FILE_LIMIT)
        .context("The app's .slugignore cannot be used")?;
    let ignore = text
        .map(|text| SlugIgnore::parse(&text))
        .unwrap_or_default();
    if !ignore.is_empty() {
        remove_ignored(app, Path::new(""), &ignore, 0)
            .context("remove files named in .slugignore")?;
    }
    Ok(ignore)
}

fn remove_ignored(
    dir: &TreeDir,
    relative: &Path,
    ignore: &SlugIgnore,
    depth: usize,
) -> anyhow::Result<()> {
    for entry in dir.entries()? {
        let name = Path::new(&entry.name);
        let path = relative.join(name);
        let is_dir = entry.kind == Kind::Dir;
        if ignore.is_ignored(&path.to_string_lossy(), is_dir) {
            dir.remove(name)?;
        } else if is_dir {
            if depth >= wharf_tenant_fs::tree::MAX_DEPTH {
                return Err(wharf_tenant_fs::TreeError::TooDeep {
                    path: path.display().to_string(),
                }
                .into());
            }
            remove_ignored(&dir.dir(name)?, &path, ignore, depth + 1)?;
        }
    }
    Ok(())
}

/// `ENV_DIR`: one file per config var, named for the var, holding its value.
fn write_env_dir(dir: &TreeDir, config: &ConfigVars) -> anyhow::Result<()> {
    for (key, value) in config.iter() {
        dir.write_new(Path::new(key), value.as_bytes(), 0o644)
            .with_context(|| format!("write ENV_DIR/{key}"))?;
    }
    Ok(())
}

/// Heroku's size style: `23.4M`, `512K`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_herokus() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.0K");
        assert_eq!(human_size(24_536_678), "23.4M");
    }
}
