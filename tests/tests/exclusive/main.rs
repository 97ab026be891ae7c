//! Tests that need the deployment to themselves, one at a time, in a binary of their own (cargo
//! runs test binaries one after another, so nothing of the main suite runs beside them): one kills
//! every connection of the application role, one counts the role's sessions left in a
//! transaction, one shows that a wake-up alone delivers a webhook, which only holds while no
//! other test calls the operator's dispatch route, and likewise for import and export jobs.

mod faults;
mod jobs;
mod transactions;
mod wakeups;

/// Held for the whole of each test here: they run one at a time.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}
