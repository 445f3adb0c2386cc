//! One module per topic of commands; [`execute`] sends a parsed [`Command`] to its function.

mod access;
pub(crate) mod addons;
mod apps;
mod apps_lifecycle;
mod auth;
mod buildpack_registrations;
mod buildpacks;
mod builds;
mod certs;
mod config_vars;
pub(crate) mod datastores;
mod deploy;
mod domains;
pub(crate) mod drains;
mod dynos;
pub(crate) mod git_credentials;
mod hosts;
mod logs;
mod maintenance;
pub(crate) mod metrics;
pub(crate) mod pg;
pub(crate) mod pg_backups;
mod ps;
pub(crate) mod redis;
mod releases;
mod rollback;
mod run;
pub(crate) mod stacks;

pub(crate) use run::{parse_env, EnvPairs};

use anyhow::Result;

use crate::command::Command;
use crate::settings::Settings;
use crate::ui::Ui;

pub async fn execute(command: Command, settings: &Settings, ui: &mut Ui) -> Result<()> {
    match command {
        Command::Login(args) => auth::login(args, settings, ui).await,
        Command::Logout => auth::logout(settings, ui).await,
        Command::Whoami(args) => auth::whoami(args, settings, ui).await,
        Command::UsersCreate(args) => auth::users_create(args, settings, ui).await,
        Command::Apps(args) => apps::list(args, settings, ui).await,
        Command::AppsCreate(args) => apps_lifecycle::create(args, settings, ui).await,
        Command::AppsInfo(args) => apps::info(args, settings, ui).await,
        Command::AppsDestroy(args) => apps_lifecycle::destroy(args, settings, ui).await,
        Command::Config(args) => config_vars::show(args, settings, ui).await,
        Command::ConfigGet(args) => config_vars::get(args, settings, ui).await,
        Command::ConfigSet(args) => config_vars::set(args, settings, ui).await,
        Command::ConfigUnset(args) => config_vars::unset(args, settings, ui).await,
        Command::Deploy(args) => deploy::deploy(args, settings, ui).await,
        Command::Builds(args) => builds::list(args, settings, ui).await,
        Command::BuildsInfo(args) => builds::info(args, settings, ui).await,
        Command::BuildsOutput(args) => builds::output(args, settings, ui).await,
        Command::BuildsCachePurge(args) => builds::purge_cache(args, settings, ui).await,
        Command::Buildpacks(args) => buildpacks::list(args, settings, ui).await,
        Command::BuildpacksAdd(args) => buildpacks::add(args, settings, ui).await,
        Command::BuildpacksRemove(args) => buildpacks::remove(args, settings, ui).await,
        Command::BuildpacksSet(args) => buildpacks::set(args, settings, ui).await,
        Command::BuildpacksClear(args) => buildpacks::clear(args, settings, ui).await,
        Command::BuildpacksRegister(args) => {
            buildpack_registrations::register(args, settings, ui).await
        }
        Command::BuildpacksRegistered(args) => {
            buildpack_registrations::registered(args, settings, ui).await
        }
        Command::BuildpacksUnregister(args) => {
            buildpack_registrations::unregister(args, settings, ui).await
        }
        Command::Hosts(args) => hosts::list(args, settings, ui).await,
        Command::HostsAdd(args) => hosts::add(args, settings, ui).await,
        Command::HostsDrain(args) => hosts::drain(args, true, settings, ui).await,
        Command::HostsUndrain(args) => hosts::drain(args, false, settings, ui).await,
        Command::HostsRemove(args) => hosts::remove(args, settings, ui).await,
        Command::Releases(args) => releases::list(args, settings, ui).await,
        Command::ReleasesInfo(args) => releases::info(args, settings, ui).await,
        Command::Rollback(args) => rollback::rollback(args, settings, ui).await,
        Command::Ps(args) => dynos::list(args, settings, ui).await,
        Command::PsRestart(args) => dynos::restart(args, settings, ui).await,
        Command::PsStop(args) => dynos::stop(args, settings, ui).await,
        Command::Logs(args) => logs::logs(args, settings, ui).await,
        Command::PsScale(args) => ps::scale(args, settings, ui).await,
        Command::PsType(args) => ps::resize(args, settings, ui).await,
        Command::Access(args) => access::list(args, settings, ui).await,
        Command::AccessAdd(args) => access::add(args, settings, ui).await,
        Command::AccessRemove(args) => access::remove(args, settings, ui).await,
        Command::Drains(args) => drains::list(args, settings, ui).await,
        Command::DrainsAdd(args) => drains::add(args, settings, ui).await,
        Command::DrainsRemove(args) => drains::remove(args, settings, ui).await,
        Command::Labs(args) => drains::labs(args, settings, ui).await,
        Command::LabsEnable(args) => drains::set_feature(args, true, settings, ui).await,
        Command::LabsDisable(args) => drains::set_feature(args, false, settings, ui).await,
        Command::Stack(args) => stacks::list(args, settings, ui).await,
        Command::StackSet(args) => stacks::set(args, settings, ui).await,
        Command::Metrics(args) => metrics::show(args, settings, ui).await,
        Command::Maintenance(args) => maintenance::show(args, settings, ui).await,
        Command::MaintenanceOn(args) => maintenance::set(args, true, settings, ui).await,
        Command::MaintenanceOff(args) => maintenance::set(args, false, settings, ui).await,
        Command::Run(args) => run::run(args, settings, ui).await,
        Command::RunDetached(args) => run::detached(args, settings, ui).await,
        Command::Addons(args) => addons::list(args, settings, ui).await,
        Command::AddonsCreate(args) => addons::create(args, settings, ui).await,
        Command::AddonsInfo(args) => addons::info(args, settings, ui).await,
        Command::AddonsDestroy(args) => addons::destroy(args, settings, ui).await,
        Command::AddonsAttach(args) => addons::attach(args, settings, ui).await,
        Command::AddonsDetach(args) => addons::detach(args, settings, ui).await,
        Command::AddonsOpen(args) => addons::open(args, settings, ui).await,
        Command::CredentialsRotate(args) => addons::rotate(args, settings, ui).await,
        Command::PgInfo(args) => pg::info(args, settings, ui).await,
        Command::PgPsql(args) => pg::psql(args, settings, ui).await,
        Command::PgReset(args) => pg::reset(args, settings, ui).await,
        Command::PgBackups(args) => pg_backups::list(args, settings, ui).await,
        Command::PgBackupsCapture(args) => pg_backups::capture(args, settings, ui).await,
        Command::PgBackupsRestore(args) => pg_backups::restore(args, settings, ui).await,
        Command::PgBackupsDownload(args) => pg_backups::download(args, settings, ui).await,
        Command::RedisInfo(args) => redis::info(args, settings, ui).await,
        Command::RedisCli(args) => redis::cli(args, settings, ui).await,
        Command::RedisCredentials(args) => redis::credentials(args, settings, ui).await,
        Command::RedisMaxmemory(args) => redis::maxmemory(args, settings, ui).await,
        Command::GitRemote(args) => apps_lifecycle::git_remote(args, settings, ui).await,
        Command::GitCredentials(args) => git_credentials::answer(args, settings, ui).await,
        Command::Domains(args) => domains::list(args, settings, ui).await,
        Command::DomainsAdd(args) => domains::add(args, settings, ui).await,
        Command::DomainsInfo(args) => domains::info(args, settings, ui).await,
        Command::DomainsRemove(args) => domains::remove(args, settings, ui).await,
        Command::DomainsUpdate(args) => domains::update(args, settings, ui).await,
        Command::DomainsClear(args) => domains::clear(args, settings, ui).await,
        Command::Certs(args) => certs::list(args, settings, ui).await,
        Command::CertsAdd(args) => certs::add(args, settings, ui).await,
        Command::CertsInfo(args) => certs::info(args, settings, ui).await,
        Command::CertsUpdate(args) => certs::update(args, settings, ui).await,
        Command::CertsRemove(args) => certs::remove(args, settings, ui).await,
    }
}
