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
    Standalone {
        /// Benchmarks only: the gateway forwards each message straight to its receivers'
        /// connections, unchecked and not stored (the yardstick of `openim-bench --ceiling`).
        /// Every listener must be on loopback.
        #[arg(long, hide = true)]
        bench_relay: bool,
    },
    /// One service as its own process (see ARCHITECTURE.md).
    #[command(flatten)]
    Service(Service),
    /// Asks a service running on this host whether it is ready: exit 0 if so, 1 if not (for
    /// container health checks; the images have no shell).
    Healthcheck {
        /// `standalone` or a service name (`api`, `msggateway`, `rpc-user`, …).
        #[arg(value_parser = parse_target)]
        service: Target,
        /// Only whether it is up (`/healthz`), not whether its backends answer (`/readyz`).
        #[arg(long)]
        live: bool,
        /// How long to wait for the answer, in seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

/// What `healthcheck` checks.
#[derive(Clone, Copy)]
enum Target {
    Standalone,
    Service(Service),
}

fn parse_target(name: &str) -> Result<Target, String> {
    if name == "standalone" {
        return Ok(Target::Standalone);
    }
    use clap::ValueEnum as _;
    Service::from_str(name, false).map(Target::Service).map_err(|_| {
        let names: Vec<String> = Service::value_variants()
            .iter()
            .filter_map(|s| Some(s.to_possible_value()?.get_name().to_owned()))
            .collect();
        format!("not a service: {name:?} (standalone, {})", names.join(", "))
    })
}

/// `openim healthcheck`: one line on stdout (healthy) or stderr (not), exit 0 or 1.
fn healthcheck(cfg: &Config, target: Target, live: bool, timeout: u64) -> std::process::ExitCode {
    let service = match target {
        Target::Standalone => None,
        Target::Service(s) => Some(s),
    };
    let probe = openim_standalone::healthcheck::probe(service, cfg);
    let checked =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(anyhow::Error::from).and_then(
            |rt| {
                rt.block_on(openim_standalone::healthcheck::check(probe, live, std::time::Duration::from_secs(timeout)))
            },
        );
    match checked {
        Ok(said) => {
            println!("healthy: {said}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let dir = cli.config.is_dir().then_some(cli.config.as_path());
    let cfg = match Config::load(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("openim: {e}");
            // A container engine reserves health-check exit code 2: unhealthy is 1.
            let healthcheck = matches!(cli.command, Command::Healthcheck { .. });
            return std::process::ExitCode::from(if healthcheck { 1 } else { 2 });
        }
    };
    if let Command::Healthcheck { service, live, timeout } = cli.command {
        return healthcheck(&cfg, service, live, timeout);
    }
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
            Command::Standalone { bench_relay: false } => {
                openim_standalone::Standalone::start(cfg).await?.run_until(signal).await
            }
            Command::Standalone { bench_relay: true } => {
                openim_standalone::Standalone::start_bench_relay(cfg).await?.run_until(signal).await
            }
            Command::Service(s) => openim_standalone::services::run(s, cfg, signal).await,
            Command::Healthcheck { .. } => unreachable!("answered above"),
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
