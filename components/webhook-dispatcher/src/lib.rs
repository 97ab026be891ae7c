//! The webhook dispatcher component: Spin's Redis trigger delivers every wake-up published on
//! [`crm_platform::edge::wakeup::CHANNEL`] here, and each runs one dispatch pass. Retries that fall due
//! between wake-ups are driven by the periodic `POST /api/v1/webhooks/dispatch` (see
//! `infra/cron/`). Natively the server runs the same pass in its own loop.

#[cfg(target_arch = "wasm32")]
mod spin_entry {
    use crm_delivery::{Dispatcher, PASS_BUDGET};

    #[spin_sdk::redis_subscriber]
    async fn on_wakeup(_message: bytes::Bytes) -> anyhow::Result<()> {
        let app = crm_platform::spin::app().await?;
        Dispatcher::new(&app.config.webhooks)?
            .run(&app.db, PASS_BUDGET)
            .await
            .map_err(|e| anyhow::anyhow!("dispatch failed: {e}"))?;
        Ok(())
    }
}
