//! Webhook handlers: subscriptions, their deliveries, pings, redeliveries and the operator dispatch.

use crate::repository::{self, Delivery, DeliveryFilter, Subscription};
use crate::service;
use crm_delivery::{signing, Dispatcher, PASS_BUDGET};
use crm_domain::webhook::{SubscriptionDraft, DELIVERY_STATUSES, SECRET_OVERLAP};
use crm_domain::{DeliveryId, TenantId, ValidationErrors, WebhookId};
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{CursorTime, Page, PageRequest};
use crm_platform::http::query::{rfc3339, Query};
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde::{Deserialize, Serialize};

/// A subscription with its signing secret: only the answers that create or rotate one.
#[derive(Serialize)]
struct WithSecret<'a> {
    #[serde(flatten)]
    subscription: &'a Subscription,
    secret: &'a str,
}

/// The field of [`WithSecret`] that is shown once: an `Idempotency-Key` replay answers it `null`.
const SECRET: &[&str] = &["secret"];

/// `POST /api/v1/webhooks`: creates a subscription; the response carries its secret, once.
pub async fn create(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: SubscriptionDraft = parse_body(&ctx.request)?;
    let subscription = service::validate(&ctx.app.config.webhooks.url_policy(), draft).await?;
    let secret = signing::generate_secret()?;
    ctx.write(async |uow| {
        let created = service::create(uow, &subscription, &secret).await?;
        let body = WithSecret {
            subscription: &created,
            secret: &secret,
        };
        let location = format!("/api/v1/webhooks/{}", created.id);
        response::entity(StatusCode::CREATED, &body, created.version, Some(&location))
            .map(|created| response::shown_once(created, SECRET))
    })
    .await
}

/// `GET /api/v1/webhooks`: newest first, keyset-paginated.
pub async fn list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor"])?;
    let page: PageRequest<WebhookId> = PageRequest::from_query(&query)?;
    let subscriptions = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, page.after, page.fetch_limit()).await
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(subscriptions, page.limit, |s| s.id),
    )
}

/// `GET /api/v1/webhooks/{id}`.
pub async fn get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let subscription = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| existing(tx, tenant, id).await)
        .await?;
    response::versioned(
        &ctx.request.headers,
        &subscription,
        subscription.version,
        None,
    )
}

/// `PATCH /api/v1/webhooks/{id}`: JSON Merge Patch of `url`, `event_types`, `description` and
/// `active`, `If-Match` honoured. Setting `active` to true re-enables a disabled subscription.
pub async fn update(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    // The URL the patch sets is resolved before the change, so that no lock waits on DNS; the
    // patch is applied again to the locked subscription.
    let policy = ctx.app.config.webhooks.url_policy();
    if patch.get("url").is_some() {
        let current = ctx
            .app
            .db
            .read(tenant, async |tx: &Tx| existing(tx, tenant, id).await)
            .await?;
        let subscription = service::patched(&current, &patch, &policy)?;
        service::resolve(&policy, &subscription.url).await?;
    }
    ctx.write(async |uow| {
        let after = service::update(uow, id, &patch, &policy, if_match.as_ref()).await?;
        response::entity(StatusCode::OK, &after, after.version, None)
    })
    .await
}

/// `DELETE /api/v1/webhooks/{id}`: removes the subscription and its deliveries. 204.
pub async fn delete(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<WebhookId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        service::delete(uow, id, if_match.as_ref()).await?;
        Ok(response::no_content())
    })
    .await
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`: a new secret, shown once; the previous one keeps
/// signing (a second signature in `webhook-signature`) for 24 hours.
pub async fn rotate_secret(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<WebhookId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let secret = signing::generate_secret()?;
    let overlap = i64::try_from(SECRET_OVERLAP.as_secs()).unwrap_or(86400);
    ctx.write(async |uow| {
        let after = service::rotate_secret(uow, id, &secret, overlap, if_match.as_ref()).await?;
        let body = WithSecret {
            subscription: &after,
            secret: &secret,
        };
        response::entity(StatusCode::OK, &body, after.version, None)
            .map(|rotated| response::shown_once(rotated, SECRET))
    })
    .await
}

/// `POST /api/v1/webhooks/{id}/ping`: queues a `webhook.ping` to this subscription only. 202 with
/// the delivery, whose outcome its `GET` shows.
pub async fn ping(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<WebhookId>("id")?;
    ctx.write(async |uow| accepted(&service::ping(uow, id).await?))
        .await
}

const DELIVERY_PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "status",
    "created_after",
    "created_before",
];

/// `GET /api/v1/webhooks/{id}/deliveries`: newest first, by `status` and creation time.
pub async fn deliveries(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let query = Query::parse(ctx.request.query.as_deref(), DELIVERY_PARAMETERS)?;
    let page: PageRequest<(CursorTime, DeliveryId)> = PageRequest::from_query(&query)?;
    let status = query.get("status").map(str::to_owned);
    if status
        .as_deref()
        .is_some_and(|s| !DELIVERY_STATUSES.contains(&s))
    {
        return Err(ApiError::bad_request(format!(
            "status must be one of {}",
            DELIVERY_STATUSES.join(", ")
        )));
    }
    let filter = DeliveryFilter {
        status,
        created_after: query.time("created_after")?.map(rfc3339),
        created_before: query.time("created_before")?.map(rfc3339),
    };
    let deliveries = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            existing(tx, tenant, id).await?;
            Ok::<_, ApiError>(
                repository::deliveries(
                    tx,
                    tenant,
                    id,
                    &filter,
                    page.after.as_ref(),
                    page.fetch_limit(),
                )
                .await?,
            )
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(deliveries, page.limit, |d| (d.created_at.clone(), d.id)),
    )
}

/// `GET /api/v1/webhooks/{id}/deliveries/{delivery_id}`: one delivery with its attempt history.
pub async fn delivery(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let (id, delivery_id) = (
        ctx.path_id::<WebhookId>("id")?,
        ctx.path_id::<DeliveryId>("delivery_id")?,
    );
    let delivery = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            repository::find_delivery(tx, tenant, id, delivery_id).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    json(StatusCode::OK, &delivery)
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver`: sends a finished delivery
/// again (same `webhook-id`, a fresh retry schedule). 202; 409 while it is still pending.
pub async fn redeliver(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let (id, delivery_id) = (
        ctx.path_id::<WebhookId>("id")?,
        ctx.path_id::<DeliveryId>("delivery_id")?,
    );
    ctx.write(async |uow| accepted(&service::redeliver(uow, id, delivery_id).await?))
        .await
}

/// The body of a bulk redelivery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeliverRange {
    from: String,
    #[serde(default)]
    to: Option<String>,
}

/// `POST /api/v1/webhooks/{id}/deliveries/redeliver` with `{"from", "to"?}`: queues again every
/// dead letter created in `[from, to)` (`to` defaults to now). 202 with the count.
pub async fn redeliver_dead(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<WebhookId>("id")?;
    let range: RedeliverRange = parse_body(&ctx.request)?;
    let from = crm_domain::time::parse(&range.from, "/from");
    let to = range.to.as_deref().map_or(Ok(chrono::Utc::now()), |raw| {
        crm_domain::time::parse(raw, "/to")
    });
    let (from, to) = match (from, to) {
        (Ok(from), Ok(to)) if from < to => (rfc3339(from), rfc3339(to)),
        (Ok(_), Ok(_)) => {
            return Err(ApiError::invalid_field(
                "/to",
                "invalid_range",
                "must be after from",
            ))
        }
        (from, to) => {
            let errors = [from.err(), to.err()].into_iter().flatten().collect();
            return Err(ApiError::Validation(ValidationErrors(errors)));
        }
    };
    ctx.write(async |uow| {
        let count = service::redeliver_dead(uow, id, &from, &to).await?;
        json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"redelivered": count, "from": from, "to": to}),
        )
    })
    .await
}

/// `POST /api/v1/webhooks/dispatch` (operator credential): one dispatch pass over every tenant,
/// for a scheduler to call every minute so that retries go out when no wake-up comes.
pub async fn dispatch(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let dispatcher = Dispatcher::new(&ctx.app.config.webhooks)?;
    let summary = dispatcher.run(&ctx.app.db, PASS_BUDGET).await?;
    json(StatusCode::OK, &summary)
}

/// The tenant's subscription `id` (404 when it has none).
async fn existing(tx: &Tx, tenant: TenantId, id: WebhookId) -> Result<Subscription, ApiError> {
    repository::find(tx, tenant, id, false)
        .await?
        .ok_or(ApiError::NotFound)
}

fn accepted(delivery: &Delivery) -> Result<ApiResponse, ApiError> {
    let mut response = json(StatusCode::ACCEPTED, delivery)?;
    response::set_header(
        &mut response,
        http::header::LOCATION,
        &format!(
            "/api/v1/webhooks/{}/deliveries/{}",
            delivery.subscription_id, delivery.id
        ),
    );
    Ok(response)
}
