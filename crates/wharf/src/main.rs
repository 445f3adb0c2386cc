//! The one `wharf` binary: `wharf server` runs the platform on this host; every other command
//! is the client, which speaks only the HTTP API.

mod server;

use clap::{Parser, Subcommand};

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
    Server(server::ServerArgs),
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
        Top::Server(args) => match runtime.block_on(server::run(args)) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("wharf server: {error:#}");
                1
            }
        },
        Top::Client(command) => runtime.block_on(wharf_cli::run(command)),
    };
    drop(runtime);
    std::process::exit(code);
}
