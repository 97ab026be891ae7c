//! The contacts component: `/api/v1/contacts/**` and a list's contacts, `/api/v1/lists/{id}/contacts`
//! (Spin routes `/api/v1/lists/:id/contacts` here: reading contacts through a filter is this
//! component's, the lists themselves are the segments component's). On Spin it also serves
//! `/healthz`, `/readyz` and the OpenAPI document.

pub mod batch;
pub mod consents;
pub mod custom_fields;
mod duplicates;
pub mod export;
mod handlers;
pub mod imports;
pub mod jobs;
pub mod merges;
pub mod preferences;
pub mod relationships;
mod repository;
pub mod search;
pub mod service;
mod timeline;

/// The statement a read by id runs inside a transaction, for benchmarks that measure the database
/// floor beneath it; and the one call `GET /api/v1/contacts/{id}` makes, which sets the tenant too.
pub use repository::{FIND as FIND_CONTACT_SQL, FIND_ALONE as FIND_CONTACT_IN_ONE_CALL_SQL};

use crm_platform::http::router::{Access, Router};
use http::Method;

pub const READ: &str = "contacts:read";
pub const WRITE: &str = "contacts:write";
/// Erasure is irreversible and separate from ordinary writes.
pub const ERASE: &str = "contacts:erase";

/// The component's route table.
pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::create_contact(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::list_contacts(ctx)),
        )
        .expensive()
        .route(
            Method::POST,
            "/api/v1/contacts/upsert",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::upsert_contact(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_contact(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/contacts/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::patch_contact(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/contacts/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::delete_contact(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/restore",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::restore_contact(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/erase",
            Access::Scope(ERASE),
            |ctx| Box::pin(handlers::erase_contact(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/history",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::contact_history(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/lists",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::contact_lists(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/lists/{id}/contacts",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::list_contacts_of_list(ctx)),
        )
        .expensive()
        .merge(batch::routes())
        .merge(merges::routes())
        .merge(duplicates::routes())
        .merge(export::routes())
        .merge(imports::routes())
        .merge(jobs::routes())
        .merge(relationships::routes())
        .merge(preferences::routes())
        .merge(consents::routes())
        .merge(timeline::routes())
        .merge(custom_fields::routes())
        .merge(search::routes())
}

/// What the contacts component serves on Spin: its routes and the operational ones.
pub fn component_routes() -> Router {
    crm_platform::http::ops::routes().merge(routes())
}

crm_platform::spin_component!(component_routes);

/// The job worker's entry point on Spin: this component also answers the Redis trigger of job
/// wake-ups (the `job-worker` component of spin.toml is this same module), and each wake-up runs one
/// worker pass over imports and export jobs, bounded in time; a pass that leaves work behind
/// publishes the next wake-up. Jobs whose wake-up is lost are taken by the periodic
/// `POST /api/v1/jobs/work` (see `infra/cron/`).
#[cfg(target_arch = "wasm32")]
mod job_worker_entry {
    use crate::jobs::worker::{self, PASS_BUDGET};

    #[spin_sdk::redis_subscriber]
    async fn on_job_wakeup(_message: bytes::Bytes) -> anyhow::Result<()> {
        let app = crm_platform::spin::app().await?;
        let more = worker::run_retrying(&app, PASS_BUDGET)
            .await
            .map_err(|e| anyhow::anyhow!("job pass failed: {e:?}"))?;
        if more {
            app.job_wakeup.publish().await;
        }
        Ok(())
    }
}
