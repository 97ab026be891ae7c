//! Webhook subscription changes and the deliveries a tenant asks for, whoever asks: each function
//! takes a unit of work and typed arguments and returns what is stored; subscription changes are
//! audited and evented in the unit of work, and a queued delivery wakes the dispatcher once the
//! change commits. Nothing here knows HTTP.

use crate::repository::{self, Delivery, Subscription};
use crm_delivery::send;
use crm_domain::event::WebhookAction;
use crm_domain::webhook::{NewSubscription, SubscriptionDraft, UrlPolicy, MAX_SUBSCRIPTIONS};
use crm_domain::{DeliveryId, ValidationErrors, WebhookId};
use crm_platform::document::{from_value, merge_patch};
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::limits;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;

/// Validates a draft: the domain rules, then (natively) what its host name resolves to. Runs
/// before the unit of work, so that no lock waits on DNS.
pub async fn validate(
    policy: &UrlPolicy,
    draft: SubscriptionDraft,
) -> Result<NewSubscription, ApiError> {
    let subscription = NewSubscription::parse(draft, policy)?;
    resolve(policy, &subscription.url).await?;
    Ok(subscription)
}

/// Checks what the host of `url` resolves to (natively; on Spin, its network blocking does), with
/// the problem at `/url`.
pub async fn resolve(policy: &UrlPolicy, url: &str) -> Result<(), ApiError> {
    let endpoint = policy
        .check(url)
        .map_err(|p| ApiError::Validation(ValidationErrors(vec![p.at("/url")])))?;
    send::check_resolution(policy, &endpoint)
        .await
        .map_err(|p| ApiError::Validation(ValidationErrors(vec![p.at("/url")])))
}

/// Creates a subscription signing with `secret`; a tenant has at most [`MAX_SUBSCRIPTIONS`].
pub async fn create(
    uow: &UnitOfWork<'_>,
    subscription: &NewSubscription,
    secret: &str,
) -> Result<Subscription, ApiError> {
    let (tx, tenant) = (uow.tx(), uow.tenant());
    if limits::count_locked(tx, tenant, "webhook_subscriptions").await? >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::conflict(
            format!("a tenant has at most {MAX_SUBSCRIPTIONS} subscriptions"),
            "",
            "too_many_subscriptions",
            "delete a subscription first",
        ));
    }
    let created = repository::insert(tx, tenant, subscription, secret).await?;
    uow.record_change(WebhookAction::Created, created.id, None, &created)
        .await?;
    Ok(created)
}

/// The subscription `current` would become under the JSON Merge Patch `patch` of its writable fields
/// (`url`, `event_types`, `description`, `active`), checked against `policy` without resolving.
pub fn patched(
    current: &Subscription,
    patch: &serde_json::Value,
    policy: &UrlPolicy,
) -> Result<NewSubscription, ApiError> {
    let mut view = current.writable_view();
    merge_patch(&mut view, patch);
    let draft: SubscriptionDraft = from_value(view)?;
    Ok(NewSubscription::parse(draft, policy)?)
}

/// Applies the JSON Merge Patch `patch` to the subscription as it is once locked, when `expected`
/// admits its version: a field the patch leaves out keeps its stored value, so a patch never undoes
/// what changed since the caller read it (the dispatcher disabling the subscription). The caller
/// resolved the URL the patch sets ([`validate`]) before the unit of work.
pub async fn update(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
    patch: &serde_json::Value,
    policy: &UrlPolicy,
    expected: Option<&ExpectedVersion>,
) -> Result<Subscription, ApiError> {
    let before = locked(uow, id, expected).await?;
    let subscription = patched(&before, patch, policy)?;
    let after = repository::update(uow.tx(), uow.tenant(), id, &subscription).await?;
    uow.record_change(WebhookAction::Updated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Makes `secret` current; the one it replaces keeps signing for `overlap_seconds`.
pub async fn rotate_secret(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
    secret: &str,
    overlap_seconds: i64,
    expected: Option<&ExpectedVersion>,
) -> Result<Subscription, ApiError> {
    let before = locked(uow, id, expected).await?;
    let after =
        repository::rotate_secret(uow.tx(), uow.tenant(), id, secret, overlap_seconds).await?;
    uow.record_change(WebhookAction::SecretRotated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Removes the subscription and its deliveries when `expected` admits its version.
pub async fn delete(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
    expected: Option<&ExpectedVersion>,
) -> Result<(), ApiError> {
    let before = locked(uow, id, expected).await?;
    repository::delete(uow.tx(), uow.tenant(), id).await?;
    uow.record_removal(WebhookAction::Deleted, id, &before)
        .await
}

/// Queues a `webhook.ping` to this subscription only.
pub async fn ping(uow: &UnitOfWork<'_>, id: WebhookId) -> Result<Delivery, ApiError> {
    let subscription = active_subscription(uow, id).await?;
    let delivery =
        repository::ping(uow.tx(), uow.tenant(), &subscription, uow.correlation_id()).await?;
    uow.wake_dispatcher();
    Ok(delivery)
}

/// Queues a finished delivery again (same `webhook-id`, a fresh retry schedule); a conflict while
/// it is still pending.
pub async fn redeliver(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
    delivery_id: DeliveryId,
) -> Result<Delivery, ApiError> {
    active_subscription(uow, id).await?;
    let delivery = repository::find_delivery(uow.tx(), uow.tenant(), id, delivery_id)
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
    let delivery = repository::redeliver(uow.tx(), uow.tenant(), id, delivery_id).await?;
    uow.wake_dispatcher();
    Ok(delivery)
}

/// Queues again every dead letter of the subscription created in `[from, to)` (RFC 3339);
/// returns how many.
pub async fn redeliver_dead(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
    from: &str,
    to: &str,
) -> Result<u64, ApiError> {
    active_subscription(uow, id).await?;
    let count = repository::redeliver_dead(uow.tx(), uow.tenant(), id, from, to).await?;
    uow.wake_dispatcher();
    Ok(count)
}

/// The subscription, locked for a change whose `expected` version it has.
async fn locked(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
    expected: Option<&ExpectedVersion>,
) -> Result<Subscription, ApiError> {
    let settings = uow.settings().await?;
    let subscription = repository::find(uow.tx(), uow.tenant(), id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    expected::check(expected, settings.require_if_match, subscription.version)?;
    Ok(subscription)
}

/// The subscription, which must be active to be sent to.
async fn active_subscription(
    uow: &UnitOfWork<'_>,
    id: WebhookId,
) -> Result<Subscription, ApiError> {
    let subscription = repository::find(uow.tx(), uow.tenant(), id, false)
        .await?
        .ok_or(ApiError::NotFound)?;
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
