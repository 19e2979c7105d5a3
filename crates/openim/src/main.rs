//! `openim`: one binary, one subcommand per service (see ARCHITECTURE.md for why).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// glibc's and especially musl's allocators are slow under many small, cross-thread
/// allocations (frames, messages); mimalloc is several times faster here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use openim_common::config::Config;
use openim_standalone::services::Service;

#[derive(Parser)]
#[command(name = "openim", version, propagate_version = true, about = "OpenIM-compatible instant-messaging server")]
struct Cli {
    /// Configuration directory (one YAML file per service; see README).
    #[arg(long, global = true, default_value = "config")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every service in one process with embedded storage (SQLite, in-memory bus and cache).
    Standalone,
    /// One service as its own process (see ARCHITECTURE.md).
    #[command(flatten)]
    Service(Service),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let dir = cli.config.is_dir().then_some(cli.config.as_path());
    let cfg = match Config::load(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("openim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    openim_common::observe::init_tracing(&cfg.log);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openim: start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let signal = openim_common::shutdown::on_signals();
        match cli.command {
            Command::Standalone => openim_standalone::Standalone::start(cfg).await?.run_until(signal).await,
            Command::Service(s) => openim_standalone::services::run(s, cfg, signal).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Exiting on error.");
            eprintln!("openim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
