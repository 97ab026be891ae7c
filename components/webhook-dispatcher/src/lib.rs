//! The webhook dispatcher component: Spin's Redis trigger delivers every wake-up published on
//! [`crm_platform::wakeup::CHANNEL`] here, and each runs one dispatch pass. Retries that fall due
//! between wake-ups are driven by the periodic `POST /api/v1/webhooks/dispatch` (see
//! `infra/cron/`). Natively the server runs the same pass in its own loop.

/// How long one wake-up may keep dispatching; what is left is picked up by the next one.
pub const PASS_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

#[cfg(target_arch = "wasm32")]
mod spin_entry {
    use crm_delivery::Dispatcher;
    use crm_platform::config::Config;
    use crm_platform::db::Db;

    #[spin_sdk::redis_subscriber]
    async fn on_wakeup(_message: bytes::Bytes) -> anyhow::Result<()> {
        let config = Config::from_spin_variables().await?;
        let db = Db::connect(&config.database_url)?;
        let summary = Dispatcher::new(&config.webhooks)?
            .run(&db, super::PASS_BUDGET)
            .await
            .map_err(|e| anyhow::anyhow!("dispatch failed: {e}"))?;
        if summary.attempts > 0 {
            eprintln!(
                "level=info msg=\"webhook dispatch\" attempts={} succeeded={} failed={}",
                summary.attempts, summary.succeeded, summary.failed
            );
        }
        Ok(())
    }
}
