//! Turns SIGINT and SIGTERM into one cancellation that every task can observe.
//!
//! A [`Shutdown`] is a cheap clone of a cancellation token: loops `select!` on
//! [`Shutdown::cancelled`] and finish their in-flight work. It must not exit the process on the
//! first signal — services flush, commit and summarise first — but a second signal exits at
//! once (status 130) for an operator who does not want to wait.

use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A shutdown that only [`Shutdown::trigger`] fires (tests, embedded use).
    pub fn manual() -> Self {
        Self::default()
    }

    /// A shutdown fired by SIGINT or SIGTERM. Must be called inside a tokio runtime.
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Self::manual();
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let fired = shutdown.clone();
        tokio::spawn(async move {
            let mut received = 0u32;
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                received += 1;
                if received == 1 {
                    tracing::info!(signal = name, "shutting down: finishing in-flight work");
                    fired.trigger();
                } else {
                    tracing::warn!(signal = name, "second signal: exiting now");
                    std::process::exit(130);
                }
            }
        });
        Ok(shutdown)
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once shutdown has been asked for.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}
