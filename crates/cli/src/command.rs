//! The client commands, named as Heroku's CLI names them (`apps:create`, `config:set`).

use clap::Subcommand;

use crate::commands::drains::{DrainArgs, FeatureArgs};
use crate::commands::metrics::MetricsArgs;
use crate::commands::pg::{PgInfoArgs, PgPsqlArgs, PgResetArgs};
use crate::commands::pg_backups::{
    PgBackupsArgs, PgBackupsCaptureArgs, PgBackupsDownloadArgs, PgBackupsRestoreArgs,
};
use crate::commands::redis::{
    RedisCliArgs, RedisCredentialsArgs, RedisInfoArgs, RedisMaxmemoryArgs,
};
use crate::commands::stacks::StackSetArgs;

use crate::commands::addons::{
    AddonArgs, AddonsArgs, AddonsAttachArgs, AddonsCreateArgs, AddonsDestroyArgs, AddonsDetachArgs,
    CredentialsRotateArgs,
};

use crate::args::{
    AccessChangeArgs, AppArgs, AppJsonArgs, AppsCreateArgs, AppsDestroyArgs, AppsInfoArgs,
    BuildpacksAddArgs, BuildpacksRegisterArgs, BuildpacksRemoveArgs, BuildpacksSetArgs,
    BuildpacksUnregisterArgs, BuildsArgs, BuildsCachePurgeArgs, BuildsInfoArgs, BuildsOutputArgs,
    CertsAddArgs, CertsInfoArgs, CertsRemoveArgs, CertsUpdateArgs, ConfigArgs, ConfigGetArgs,
    ConfigSetArgs, ConfigUnsetArgs, DeployArgs, DomainArgs, DomainJsonArgs, DomainsAddArgs,
    DomainsUpdateArgs, GitCredentialsArgs, GitRemoteArgs, HostArgs, HostsAddArgs, JsonArgs,
    LoginArgs, LogsArgs, PsArgs, PsRestartArgs, PsScaleArgs, PsStopArgs, PsTypeArgs, ReleasesArgs,
    ReleasesInfoArgs, RollbackArgs, RunArgs, RunDetachedArgs, UsersCreateArgs,
};

/// All client commands; the binary adds a `server` subcommand next to them via
/// `#[command(flatten)]`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Log in with your e-mail address and API key (stored in ~/.netrc)
    #[command(name = "login", visible_alias = "auth:login")]
    Login(LoginArgs),
    /// Forget the API key stored in ~/.netrc
    #[command(name = "logout", visible_alias = "auth:logout")]
    Logout,
    /// Show the e-mail address you are logged in as
    #[command(name = "auth:whoami", visible_alias = "whoami")]
    Whoami(JsonArgs),
    /// Create a user and its first API key (admins only)
    #[command(name = "users:create")]
    UsersCreate(UsersCreateArgs),

    /// List your apps and the apps you collaborate on
    #[command(name = "apps", visible_alias = "apps:list")]
    Apps(JsonArgs),
    /// Create an app
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate(AppsCreateArgs),
    /// Show an app
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo(AppsInfoArgs),
    /// Delete an app for good
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy(AppsDestroyArgs),

    /// Show an app's config vars
    #[command(name = "config")]
    Config(ConfigArgs),
    /// Show one config var
    #[command(name = "config:get")]
    ConfigGet(ConfigGetArgs),
    /// Set config vars and restart the app
    #[command(name = "config:set", visible_alias = "config:add")]
    ConfigSet(ConfigSetArgs),
    /// Remove config vars and restart the app
    #[command(name = "config:unset", visible_alias = "config:remove")]
    ConfigUnset(ConfigUnsetArgs),

    /// Build and release the code in a directory, without git
    #[command(name = "deploy")]
    Deploy(DeployArgs),
    /// List an app's builds, newest first
    #[command(name = "builds", visible_alias = "builds:list")]
    Builds(BuildsArgs),
    /// Show one build
    #[command(name = "builds:info")]
    BuildsInfo(BuildsInfoArgs),
    /// Show a build's output (follows it while it runs)
    #[command(name = "builds:output")]
    BuildsOutput(BuildsOutputArgs),
    /// Throw away the app's build cache
    #[command(name = "builds:cache:purge")]
    BuildsCachePurge(BuildsCachePurgeArgs),

    /// Show the app's buildpacks
    #[command(name = "buildpacks")]
    Buildpacks(AppJsonArgs),
    /// Add a buildpack
    #[command(name = "buildpacks:add")]
    BuildpacksAdd(BuildpacksAddArgs),
    /// Remove a buildpack, by URL or index
    #[command(name = "buildpacks:remove")]
    BuildpacksRemove(BuildpacksRemoveArgs),
    /// Replace a buildpack (the first, or the one at --index)
    #[command(name = "buildpacks:set")]
    BuildpacksSet(BuildpacksSetArgs),
    /// Remove all buildpacks: builds detect them again
    #[command(name = "buildpacks:clear")]
    BuildpacksClear(AppArgs),
    /// Register a directory on the server as a buildpack apps add by name (admins only)
    #[command(name = "buildpacks:register")]
    BuildpacksRegister(BuildpacksRegisterArgs),
    /// List the buildpacks admins registered (admins also see their directories)
    #[command(name = "buildpacks:registered")]
    BuildpacksRegistered(JsonArgs),
    /// Unregister a buildpack: apps that list it fail to build until they change (admins only)
    #[command(name = "buildpacks:unregister")]
    BuildpacksUnregister(BuildpacksUnregisterArgs),

    /// List the hosts that run dynos: state, dynos and memory (admins only)
    #[command(name = "hosts")]
    Hosts(JsonArgs),
    /// Add a host and print the command that joins it (admins only)
    #[command(name = "hosts:add")]
    HostsAdd(HostsAddArgs),
    /// Drain a host: its dynos move to other hosts, web dynos new ones first (admins only)
    #[command(name = "hosts:drain")]
    HostsDrain(HostArgs),
    /// End a host's drain: it takes dynos again (admins only)
    #[command(name = "hosts:undrain")]
    HostsUndrain(HostArgs),
    /// Remove a host and revoke its credential; its dynos move elsewhere (admins only)
    #[command(name = "hosts:remove")]
    HostsRemove(HostArgs),

    /// List an app's releases, newest first
    #[command(name = "releases")]
    Releases(ReleasesArgs),
    /// Show one release and its config vars
    #[command(name = "releases:info")]
    ReleasesInfo(ReleasesInfoArgs),
    /// Roll back to an earlier release (code and config)
    #[command(name = "rollback", visible_alias = "releases:rollback")]
    Rollback(RollbackArgs),

    /// List an app's dynos
    #[command(name = "ps")]
    Ps(PsArgs),
    /// Restart dynos: one (web.1), a process type (web), or all
    #[command(name = "ps:restart", visible_alias = "restart")]
    PsRestart(PsRestartArgs),
    /// Stop dynos: one (web.1) or a process type (web)
    #[command(name = "ps:stop", visible_aliases = ["stop", "ps:kill", "kill"])]
    PsStop(PsStopArgs),
    /// Scale dyno quantities (web=2, worker+1, web=1:Standard-2X)
    #[command(name = "ps:scale", visible_alias = "scale")]
    PsScale(PsScaleArgs),
    /// Change or show dyno sizes
    #[command(name = "ps:type", visible_alias = "ps:resize")]
    PsType(PsTypeArgs),

    /// Run a command in a one-off dyno, attached to this terminal
    #[command(name = "run")]
    Run(RunArgs),
    /// Run a command in a one-off dyno in the background (its output goes to the logs)
    #[command(name = "run:detached")]
    RunDetached(RunDetachedArgs),

    /// Show an app's logs (--tail to follow them)
    #[command(name = "logs")]
    Logs(LogsArgs),

    /// List who has access to an app
    #[command(name = "access")]
    Access(AppJsonArgs),
    /// Give a user access to an app
    #[command(name = "access:add")]
    AccessAdd(AccessChangeArgs),
    /// Take a user's access to an app away
    #[command(name = "access:remove")]
    AccessRemove(AccessChangeArgs),

    /// List an app's log drains
    #[command(name = "drains")]
    Drains(AppJsonArgs),
    /// Forward an app's log to a syslog or HTTPS endpoint
    #[command(name = "drains:add")]
    DrainsAdd(DrainArgs),
    /// Stop forwarding an app's log to a drain (by URL, id or token)
    #[command(name = "drains:remove")]
    DrainsRemove(DrainArgs),
    /// List an app's features and whether they are on
    #[command(name = "labs", visible_alias = "features")]
    Labs(AppJsonArgs),
    /// Turn an app feature on (e.g. log-runtime-metrics, http-session-affinity)
    #[command(name = "labs:enable", visible_alias = "features:enable")]
    LabsEnable(FeatureArgs),
    /// Turn an app feature off
    #[command(name = "labs:disable", visible_alias = "features:disable")]
    LabsDisable(FeatureArgs),

    /// List the stacks (debian-12, debian-13): the app's is marked with *
    #[command(name = "stack", visible_alias = "apps:stacks")]
    Stack(AppArgs),
    /// Set the stack the app's next build runs on
    #[command(name = "stack:set")]
    StackSet(StackSetArgs),

    /// Show the app's metrics history: requests, latency and errors through the router,
    /// dynos' memory and load, and events (deploys, config changes, scaling, crashes)
    #[command(name = "metrics")]
    Metrics(MetricsArgs),

    /// Show whether maintenance mode is on
    #[command(name = "maintenance")]
    Maintenance(AppArgs),
    /// Serve a maintenance page instead of the app
    #[command(name = "maintenance:on")]
    MaintenanceOn(AppArgs),
    /// Serve the app again
    #[command(name = "maintenance:off")]
    MaintenanceOff(AppArgs),

    /// List an app's add-ons and their attachments
    #[command(name = "addons", visible_alias = "addons:list")]
    Addons(AddonsArgs),
    /// Create an add-on (heroku-postgresql, wharf-redis:mini) and attach it to the app
    #[command(name = "addons:create", visible_alias = "addons:add")]
    AddonsCreate(AddonsCreateArgs),
    /// Show an add-on
    #[command(name = "addons:info")]
    AddonsInfo(AddonArgs),
    /// Destroy an add-on and all its data
    #[command(name = "addons:destroy", visible_alias = "addons:remove")]
    AddonsDestroy(AddonsDestroyArgs),
    /// Attach an existing add-on to another app (share one database between apps)
    #[command(name = "addons:attach")]
    AddonsAttach(AddonsAttachArgs),
    /// Detach an add-on from the app (its config vars go in a new release)
    #[command(name = "addons:detach")]
    AddonsDetach(AddonsDetachArgs),
    /// Print an add-on's URL
    #[command(name = "addons:open")]
    AddonsOpen(AddonArgs),
    /// Give a database new credentials; the old ones stop once the dynos have restarted
    #[command(
        name = "pg:credentials:rotate",
        visible_alias = "addons:credentials:rotate"
    )]
    CredentialsRotate(CredentialsRotateArgs),

    /// Show a Postgres database's plan, version, size and connections
    #[command(name = "pg:info", visible_alias = "pg")]
    PgInfo(PgInfoArgs),
    /// Open psql on a Postgres database, in a one-off dyno attached to this terminal
    #[command(name = "pg:psql")]
    PgPsql(PgPsqlArgs),
    /// Empty a Postgres database: all its data is lost
    #[command(name = "pg:reset")]
    PgReset(PgResetArgs),
    /// List the backups of the app's Postgres databases, newest first
    #[command(name = "pg:backups", visible_alias = "pg:backups:list")]
    PgBackups(PgBackupsArgs),
    /// Back up a Postgres database now
    #[command(name = "pg:backups:capture")]
    PgBackupsCapture(PgBackupsCaptureArgs),
    /// Replace a Postgres database's data with a backup (its own, or APP::b001)
    #[command(name = "pg:backups:restore")]
    PgBackupsRestore(PgBackupsRestoreArgs),
    /// Save a backup to a file (latest.dump), for pg_restore
    #[command(name = "pg:backups:download")]
    PgBackupsDownload(PgBackupsDownloadArgs),

    /// Show a Redis add-on's plan, version and memory
    #[command(name = "redis:info", visible_alias = "redis")]
    RedisInfo(RedisInfoArgs),
    /// Open redis-cli on a Redis add-on, in a one-off dyno attached to this terminal
    #[command(name = "redis:cli")]
    RedisCli(RedisCliArgs),
    /// Print a Redis add-on's URL, or give it a new password with --reset
    #[command(name = "redis:credentials")]
    RedisCredentials(RedisCredentialsArgs),
    /// Set what a Redis add-on evicts when its memory is full
    #[command(name = "redis:maxmemory")]
    RedisMaxmemory(RedisMaxmemoryArgs),

    /// Point a git remote of the current repository at an app
    #[command(name = "git:remote")]
    GitRemote(GitRemoteArgs),
    /// The git credential helper `git:remote` sets up (run by git)
    #[command(name = "git:credentials", hide = true)]
    GitCredentials(GitCredentialsArgs),

    /// List the app's own hostname and its custom domains
    #[command(name = "domains")]
    Domains(AppJsonArgs),
    /// Add a custom domain to the app
    #[command(name = "domains:add")]
    DomainsAdd(DomainsAddArgs),
    /// Show one of the app's domains
    #[command(name = "domains:info")]
    DomainsInfo(DomainJsonArgs),
    /// Remove a custom domain from the app
    #[command(name = "domains:remove")]
    DomainsRemove(DomainArgs),
    /// Serve a custom domain with another SNI endpoint
    #[command(name = "domains:update")]
    DomainsUpdate(DomainsUpdateArgs),
    /// Remove all of the app's custom domains
    #[command(name = "domains:clear")]
    DomainsClear(AppArgs),

    /// List the app's SSL certificates (SNI endpoints)
    #[command(name = "certs")]
    Certs(AppJsonArgs),
    /// Add an SSL certificate and serve the app's domains it covers with it
    #[command(name = "certs:add")]
    CertsAdd(CertsAddArgs),
    /// Show an SSL certificate
    #[command(name = "certs:info")]
    CertsInfo(CertsInfoArgs),
    /// Replace an SSL certificate (a renewal)
    #[command(name = "certs:update")]
    CertsUpdate(CertsUpdateArgs),
    /// Remove an SSL certificate
    #[command(name = "certs:remove")]
    CertsRemove(CertsRemoveArgs),
}
