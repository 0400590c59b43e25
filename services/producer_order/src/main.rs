//! `producer-order`: bursts configurable order events into the order topic.
//!
//! This file only wires settings, telemetry and shutdown to the run; the generator, its
//! pacing and the run loop live in their own modules.

mod generator;
mod live;
mod pacing;
mod run;
mod settings;

use std::process::ExitCode;

use anyhow::Context;
use shared::cli::{ServiceInfo, Startup};
use shared::control::Baseline;
use shared::settings::LogFormat;

use settings::ProducerSettings;

const INFO: ServiceInfo = ServiceInfo {
    binary: "producer-order",
    version: env!("CARGO_PKG_VERSION"),
    about: "Bursts configurable order events (JSON) into the order topic.",
    default_env_file: "services/producer_order/producer.env",
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
    let (settings, log_format, baseline) =
        match shared::cli::start(&INFO, &settings::variables(), |source| {
            Ok((
                ProducerSettings::from_source(source)?,
                LogFormat::from_source(source)?,
                // The start-up values, for live changes to be checked against (shared::control).
                Baseline::capture(source, &settings::variables()),
            ))
        }) {
            Startup::Run(loaded) | Startup::Subcommand(_, loaded) => loaded,
            Startup::Exit(code) => return ExitCode::from(code as u8),
        };
    match start(settings, baseline) {
        Ok(summary) => {
            summary.print(log_format);
            if summary.all_acknowledged() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn start(settings: ProducerSettings, baseline: Baseline) -> anyhow::Result<run::Summary> {
    let shutdown =
        shared::shutdown::Shutdown::on_signals().context("installing signal handlers")?;
    run::run(settings, baseline, shutdown).await
}
