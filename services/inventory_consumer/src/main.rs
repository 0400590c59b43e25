//! `inventory-consumer`: applies stock rules to orders and emits one outcome per order.
//!
//! This file only wires settings, telemetry and shutdown to the run; the rules, the stock
//! changelog and the per-partition workers live in their own modules.

mod commit;
mod live;
mod member;
mod rules;
mod run;
mod settings;
mod state;
mod worker;

use std::process::ExitCode;

use anyhow::Context;
use shared::cli::{ServiceInfo, Startup};

use live::Configured;
use shared::control::Baseline;

const INFO: ServiceInfo = ServiceInfo {
    binary: "inventory-consumer",
    version: env!("CARGO_PKG_VERSION"),
    about: "Consumes orders, applies stock rules and emits one outcome per order.",
    default_env_file: "services/inventory_consumer/inventory.env",
    subcommands: &[],
};

/// glibc's malloc took about a third of the CPU time in profiles of the producer and the
/// inventory consumer (many small, short-lived allocations per record); mimalloc is built for
/// exactly that pattern.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    shared::memory::release_freed_memory_promptly();
    let (configured, baseline) = match shared::cli::start(&INFO, &settings::variables(), |source| {
        Ok((
            Configured::from_source(source)?,
            // The start-up values, for live changes to be checked against (shared::control).
            Baseline::capture(source, &settings::variables()),
        ))
    }) {
        Startup::Run(loaded) | Startup::Subcommand(_, loaded) => loaded,
        Startup::Exit(code) => return ExitCode::from(code as u8),
    };
    match start(configured, baseline) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn start(configured: Configured, baseline: Baseline) -> anyhow::Result<()> {
    let shutdown =
        shared::shutdown::Shutdown::on_signals().context("installing signal handlers")?;
    run::run(configured, baseline, shutdown).await
}
