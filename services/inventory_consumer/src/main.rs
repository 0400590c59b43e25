//! `inventory-consumer`: applies stock rules to orders and emits one outcome per order.
//!
//! This file only wires settings, telemetry and shutdown together; the consumer arrives with
//! its own issue. Until then the service waits for its topics and exits.

mod settings;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use shared::admin::TopicAdmin;
use shared::cli::{ServiceInfo, Startup};

use settings::InventorySettings;

const INFO: ServiceInfo = ServiceInfo {
    binary: "inventory-consumer",
    version: env!("CARGO_PKG_VERSION"),
    about: "Consumes orders, applies stock rules and emits one outcome per order.",
    default_env_file: "services/inventory_consumer/inventory.env",
    subcommands: &[],
};

fn main() -> ExitCode {
    let settings = match shared::cli::start(
        &INFO,
        &settings::variables(),
        InventorySettings::from_source,
    ) {
        Startup::Run(settings) | Startup::Subcommand(_, settings) => settings,
        Startup::Exit(code) => return ExitCode::from(code as u8),
    };
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(settings: InventorySettings) -> anyhow::Result<()> {
    let shutdown =
        shared::shutdown::Shutdown::on_signals().context("installing signal handlers")?;
    tracing::info!(group = %settings.group_id, orders = %settings.order_topic, "inventory-consumer starting");
    let topics = [
        settings.order_topic.as_str(),
        settings.inventory_topic.as_str(),
    ];
    tokio::select! {
        waited = async {
            let mut admin = TopicAdmin::connect(&settings.connection, Duration::from_secs(30)).await?;
            admin.wait_for_topics(&topics, &settings.topic_wait).await
        } => {
            waited.context("waiting for topics")?;
            tracing::info!("topics exist; order processing is not implemented yet");
        }
        _ = shutdown.cancelled() => tracing::info!("stopped while waiting for topics"),
    }
    Ok(())
}
