//! The webhooks component: `/api/v1/webhooks/**`. Subscriptions (scope `webhooks:manage`), their
//! deliveries, pings and redeliveries, and the operator-only dispatch route that a scheduler calls
//! so that retries go out (see `infra/cron/`). Delivery itself lives in `crm-delivery`.

mod handlers;
mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub const MANAGE: &str = "webhooks:manage";

/// The component's route table. Literal segments (`dispatch`, `redeliver`) precede the `{id}`
/// patterns that would otherwise match them.
pub fn routes() -> Router {
    let manage = Access::Scope(MANAGE);
    Router::new()
        .route(
            Method::POST,
            "/api/v1/webhooks/dispatch",
            Access::Operator,
            |ctx| Box::pin(handlers::dispatch(ctx)),
        )
        .route(Method::POST, "/api/v1/webhooks", manage, |ctx| {
            Box::pin(handlers::create(ctx))
        })
        .route(Method::GET, "/api/v1/webhooks", manage, |ctx| {
            Box::pin(handlers::list(ctx))
        })
        .route(Method::GET, "/api/v1/webhooks/{id}", manage, |ctx| {
            Box::pin(handlers::get(ctx))
        })
        .route(Method::PATCH, "/api/v1/webhooks/{id}", manage, |ctx| {
            Box::pin(handlers::update(ctx))
        })
        .route(Method::DELETE, "/api/v1/webhooks/{id}", manage, |ctx| {
            Box::pin(handlers::delete(ctx))
        })
        .route(
            Method::POST,
            "/api/v1/webhooks/{id}/rotate-secret",
            manage,
            |ctx| Box::pin(handlers::rotate_secret(ctx)),
        )
        .route(Method::POST, "/api/v1/webhooks/{id}/ping", manage, |ctx| {
            Box::pin(handlers::ping(ctx))
        })
        .route(
            Method::GET,
            "/api/v1/webhooks/{id}/deliveries",
            manage,
            |ctx| Box::pin(handlers::deliveries(ctx)),
        )
        .expensive()
        .route(
            Method::POST,
            "/api/v1/webhooks/{id}/deliveries/redeliver",
            manage,
            |ctx| Box::pin(handlers::redeliver_dead(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
            manage,
            |ctx| Box::pin(handlers::delivery(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            manage,
            |ctx| Box::pin(handlers::redeliver(ctx)),
        )
}

crm_platform::spin_component!(routes);
