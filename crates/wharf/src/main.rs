//! The one `wharf` binary: `wharf server` runs the platform on this host; every other command
//! is the client, which speaks only the HTTP API.

mod addons;
mod agent;
mod agent_router;
mod data_dir;
mod handover;
mod heroku_env;
mod hook;
mod host;
mod routing;
mod server;
mod tunnel;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: the router allocates and frees on every request from
/// a thread per core, where glibc's arenas cost it about a third of its CPU time
/// (`scripts/bench-router`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "Wharf: a self-hostable Heroku",
    after_help = "Run `wharf server` on the host; use the other commands from anywhere."
)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run the platform on this host (API, and the parts later issues add)
    Server(Box<server::ServerArgs>),
    /// Run the dynos a control plane places on this host (after `wharf hosts:add`)
    Agent(Box<agent::AgentArgs>),
    /// Print the environment that points Heroku's CLI at this host's server (for `eval`)
    #[command(name = "heroku-env")]
    HerokuEnv(heroku_env::HerokuEnvArgs),
    /// Forward 127.0.0.1 to a remote server's API TLS listener, so that Heroku's CLI can use it
    Tunnel(tunnel::TunnelArgs),
    /// Serve a static site from the current directory (the static buildpack's web process)
    #[command(name = "static-server")]
    StaticServer,
    /// Run by git inside app repositories during a push
    #[command(name = "git-hook", hide = true)]
    GitHook {
        /// The hook git runs (only pre-receive)
        hook: String,
    },
    #[command(flatten)]
    Client(wharf_cli::Command),
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wharf: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let code = match cli.command {
        Top::Server(args) => report(runtime.block_on(server::run(*args))),
        Top::Agent(args) => report(runtime.block_on(agent::run(*args))),
        Top::HerokuEnv(args) => report(heroku_env::run(&args)),
        Top::Tunnel(args) => report(runtime.block_on(tunnel::run(args))),
        Top::StaticServer => report(runtime.block_on(static_server())),
        Top::GitHook { hook } if hook == "pre-receive" => {
            match runtime.block_on(hook::pre_receive()) {
                Ok(code) => code,
                Err(error) => {
                    println!(" !     {error:#}");
                    1
                }
            }
        }
        Top::GitHook { hook } => {
            eprintln!("wharf git-hook: unknown hook {hook:?}");
            1
        }
        Top::Client(command) => runtime.block_on(wharf_cli::run(command)),
    };
    drop(runtime);
    std::process::exit(code);
}

fn report(outcome: anyhow::Result<()>) -> i32 {
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("wharf: {error:#}");
            1
        }
    }
}

/// Serves the app in the current directory on `$PORT` until SIGTERM or SIGINT.
async fn static_server() -> anyhow::Result<()> {
    use anyhow::Context;
    let port: u16 = std::env::var("PORT")
        .context("PORT is not set: the static server listens on $PORT")?
        .parse()
        .context("PORT is not a port number")?;
    let mut signals = server::ShutdownSignals::listen()?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("listen on port {port}"))?;
    let app_dir = std::env::current_dir().context("find the current directory")?;
    wharf_static_server::serve(&app_dir, listener, async move {
        signals.recv().await;
    })
    .await
}
