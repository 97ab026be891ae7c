//! Webhook handlers: subscriptions, their deliveries, pings, redeliveries and the operator dispatch.

use crate::repository::{self, Delivery, DeliveryFilter, Subscription};
use crm_delivery::{send, signing, Dispatcher, PASS_BUDGET};
use crm_domain::audit::AuditRecord;
use crm_domain::event::DomainEvent;
use crm_domain::webhook::{
    NewSubscription, SubscriptionDraft, DELIVERY_STATUSES, MAX_SUBSCRIPTIONS, SECRET_OVERLAP,
};
use crm_domain::{DeliveryId, FieldError, TenantId, ValidationErrors, WebhookId};
use crm_platform::changelog;
use crm_platform::db::{DbError, Tx};
use crm_platform::http::etag;
use crm_platform::http::json::{from_value, merge_patch, parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::{rfc3339, Query};
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::tenants;
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

/// `POST /api/v1/webhooks`: creates a subscription; the response carries its secret, once.
pub async fn create(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let draft: SubscriptionDraft = parse_body(&ctx.request)?;
    let subscription = validate(&ctx, draft).await?;
    let secret = signing::generate_secret()?;
    let response = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            if repository::count_locked(tx, tenant).await? >= MAX_SUBSCRIPTIONS {
                return Err(ApiError::conflict(
                    format!("a tenant has at most {MAX_SUBSCRIPTIONS} subscriptions"),
                    "",
                    "too_many_subscriptions",
                    "delete a subscription first",
                ));
            }
            let created = repository::insert(tx, tenant, &subscription, &secret).await?;
            record(tx, &ctx, "create", "webhook.created", None, &created).await?;
            let body = WithSecret {
                subscription: &created,
                secret: &secret,
            };
            let location = format!("/api/v1/webhooks/{}", created.id);
            let response =
                response::entity(StatusCode::CREATED, &body, created.version, Some(&location))?;
            ctx.recorded(tx, response).await
        })
        .await?;
    Ok(response)
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
    // The URL is validated (and resolved) before the transaction: no lock waits on DNS.
    let current = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| existing(tx, tenant, id).await)
        .await?;
    let mut view = current.writable_view();
    merge_patch(&mut view, &patch);
    let draft: SubscriptionDraft = from_value(view)?;
    let subscription = validate(&ctx, draft).await?;
    change(&ctx, "update", None, async |tx, tenant, id| {
        repository::update(tx, tenant, id, &subscription).await
    })
    .await
}

/// `DELETE /api/v1/webhooks/{id}`: removes the subscription and its deliveries. 204.
pub async fn delete(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let before = locked(tx, tenant, id, if_match.as_ref()).await?;
            repository::delete(tx, tenant, id).await?;
            let audit =
                AuditRecord::of::<Subscription>("delete", "webhook", id, Some(&before), None);
            let event = DomainEvent::of("webhook.deleted", "webhook", id, &before);
            changelog::record(tx, &ctx, &audit, &event).await
        })
        .await?;
    let mut response = ApiResponse::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`: a new secret, shown once; the previous one keeps
/// signing (a second signature in `webhook-signature`) for 24 hours.
pub async fn rotate_secret(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let secret = signing::generate_secret()?;
    let overlap = i64::try_from(SECRET_OVERLAP.as_secs()).unwrap_or(86400);
    change(
        &ctx,
        "rotate_secret",
        Some(&secret),
        async |tx, tenant, id| repository::rotate_secret(tx, tenant, id, &secret, overlap).await,
    )
    .await
}

/// Applies `apply` to the subscription of the path, locked and checked against `If-Match`;
/// records the change (`webhook.updated`) and answers with the result, with `secret` when the
/// change made one.
async fn change(
    ctx: &RequestContext,
    action: &'static str,
    secret: Option<&str>,
    apply: impl AsyncFnOnce(&Tx, TenantId, WebhookId) -> Result<Subscription, DbError>,
) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let before = locked(tx, tenant, id, if_match.as_ref()).await?;
            let after = apply(tx, tenant, id).await?;
            record(tx, ctx, action, "webhook.updated", Some(&before), &after).await?;
            let response = match secret {
                Some(secret) => {
                    let body = WithSecret {
                        subscription: &after,
                        secret,
                    };
                    response::entity(StatusCode::OK, &body, after.version, None)?
                }
                None => response::entity(StatusCode::OK, &after, after.version, None)?,
            };
            ctx.recorded(tx, response).await
        })
        .await
}

/// `POST /api/v1/webhooks/{id}/ping`: queues a `webhook.ping` to this subscription only. 202 with
/// the delivery, whose outcome its `GET` shows.
pub async fn ping(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let response = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let subscription = active_subscription(tx, tenant, id).await?;
            let delivery = repository::ping(tx, tenant, &subscription, &ctx.request_id).await?;
            ctx.recorded(tx, accepted(&delivery)?).await
        })
        .await?;
    ctx.wake_dispatcher();
    Ok(response)
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
    let page: PageRequest<(String, DeliveryId)> = PageRequest::from_query(&query)?;
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
    let tenant = ctx.principal()?.tenant_id;
    let (id, delivery_id) = (
        ctx.path_id::<WebhookId>("id")?,
        ctx.path_id::<DeliveryId>("delivery_id")?,
    );
    let response = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            active_subscription(tx, tenant, id).await?;
            let delivery = repository::find_delivery(tx, tenant, id, delivery_id)
                .await?
                .ok_or(ApiError::NotFound)?;
            if delivery.status == "pending" {
                return Err(ApiError::conflict(
                    "the delivery is still pending; it will be attempted on its schedule",
                    "/status",
                    "delivery_pending",
                    "only a succeeded or dead delivery can be redelivered",
                ));
            }
            let delivery = repository::redeliver(tx, tenant, id, delivery_id).await?;
            ctx.recorded(tx, accepted(&delivery)?).await
        })
        .await?;
    ctx.wake_dispatcher();
    Ok(response)
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
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<WebhookId>("id")?;
    let range: RedeliverRange = parse_body(&ctx.request)?;
    let from = parse_time(&range.from, "/from");
    let to = range
        .to
        .as_deref()
        .map_or(Ok(chrono::Utc::now()), |raw| parse_time(raw, "/to"));
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
    let response = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            active_subscription(tx, tenant, id).await?;
            let count = repository::redeliver_dead(tx, tenant, id, &from, &to).await?;
            let body = serde_json::json!({"redelivered": count, "from": from, "to": to});
            ctx.recorded(tx, json(StatusCode::ACCEPTED, &body)?).await
        })
        .await?;
    ctx.wake_dispatcher();
    Ok(response)
}

/// `POST /api/v1/webhooks/dispatch` (operator credential): one dispatch pass over every tenant,
/// for a scheduler to call every minute so that retries go out when no wake-up comes.
pub async fn dispatch(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let dispatcher = Dispatcher::new(&ctx.app.config.webhooks)?;
    let summary = dispatcher.run(&ctx.app.db, PASS_BUDGET).await?;
    json(StatusCode::OK, &summary)
}

fn parse_time(raw: &str, field: &str) -> Result<chrono::DateTime<chrono::Utc>, FieldError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| FieldError::new(field, "invalid_time", "must be an RFC 3339 time"))
}

/// Validates a draft: the domain rules, then (natively) what its host name resolves to.
async fn validate(
    ctx: &RequestContext,
    draft: SubscriptionDraft,
) -> Result<NewSubscription, ApiError> {
    let policy = ctx.app.config.webhooks.url_policy();
    let subscription = NewSubscription::parse(draft, &policy)?;
    let endpoint = policy
        .check(&subscription.url)
        .map_err(|p| ApiError::Validation(ValidationErrors(vec![p.at("/url")])))?;
    send::check_resolution(&policy, &endpoint)
        .await
        .map_err(|p| ApiError::Validation(ValidationErrors(vec![p.at("/url")])))?;
    Ok(subscription)
}

/// The subscription, locked for a change whose `If-Match` it satisfies.
async fn locked(
    tx: &Tx,
    tenant: TenantId,
    id: WebhookId,
    if_match: Option<&etag::IfMatch>,
) -> Result<Subscription, ApiError> {
    let settings = tenants::settings(tx, tenant).await?;
    let subscription = repository::find(tx, tenant, id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    etag::check_precondition(if_match, settings.require_if_match, subscription.version)?;
    Ok(subscription)
}

/// The tenant's subscription `id` (404 when it has none).
async fn existing(tx: &Tx, tenant: TenantId, id: WebhookId) -> Result<Subscription, ApiError> {
    repository::find(tx, tenant, id, false)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The subscription, which must be active to be sent to.
async fn active_subscription(
    tx: &Tx,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Subscription, ApiError> {
    let subscription = existing(tx, tenant, id).await?;
    if !subscription.active {
        return Err(ApiError::conflict(
            "the subscription is disabled; set active to true first",
            "/active",
            "subscription_disabled",
            "the subscription is not active",
        ));
    }
    Ok(subscription)
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

async fn record(
    tx: &Tx,
    ctx: &RequestContext,
    action: &'static str,
    event: &'static str,
    before: Option<&Subscription>,
    after: &Subscription,
) -> Result<(), ApiError> {
    changelog::record_change(tx, ctx, action, event, "webhook", after.id, before, after).await
}
