//! Merge handlers: HTTP in (body, path id, `If-Match`), one service call or read, HTTP out.

use super::repository::{self, MergeRecord};
use super::service::{self, MergeOutcome};
use crm_domain::contact::merge::{MergeDraft, MergeRequest, Moved};
use crm_domain::contact::Contact;
use crm_domain::timeline::EntryActor;
use crm_domain::{ContactId, MergeId};
use crm_platform::http::etag;
use crm_platform::http::json::parse_body;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::{header, StatusCode};
use serde::Serialize;

/// A merge as the API shows it: who survived, who was merged, the survivor as the merge left it,
/// the merged contacts as they were, what moved, and until when it can be undone.
#[derive(Debug, Serialize)]
struct MergeView<'a> {
    /// Absent for a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<MergeId>,
    dry_run: bool,
    survivor_id: ContactId,
    merged_contact_ids: &'a [ContactId],
    contact: &'a Contact,
    #[serde(skip_serializing_if = "Option::is_none")]
    merged_contacts: Option<&'a [Contact]>,
    moved: &'a Moved,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<EntryActor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merged_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    undo_until: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    undone_at: Option<&'a str>,
}

impl<'a> MergeView<'a> {
    fn of_record(record: &'a MergeRecord) -> Self {
        Self {
            id: Some(record.id),
            dry_run: false,
            survivor_id: record.survivor_id,
            merged_contact_ids: &record.merged_ids,
            contact: &record.survivor_after,
            merged_contacts: Some(&record.merged_before),
            moved: &record.moved,
            actor: Some(EntryActor {
                kind: record.actor_type.clone(),
                id: record.actor.clone(),
            }),
            merged_at: Some(&record.merged_at),
            undo_until: Some(&record.expires_at),
            undone_at: record.undone_at.as_deref(),
        }
    }

    fn of_dry_run(outcome: &'a MergeOutcome) -> Self {
        Self {
            id: None,
            dry_run: true,
            survivor_id: outcome.contact.id,
            merged_contact_ids: &outcome.merged_ids,
            contact: &outcome.contact,
            merged_contacts: None,
            moved: &outcome.moved,
            actor: None,
            merged_at: None,
            undo_until: None,
            undone_at: None,
        }
    }
}

/// `POST /api/v1/contacts/{id}/merge`: merges the body's `contact_ids` into the contact of the
/// path under `If-Match` on it; 201 with the merge (`Location: /api/v1/merges/{id}`), or 200 with
/// what it would do for `dry_run: true`.
pub async fn merge_contacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let survivor = ctx.path_id::<ContactId>("id")?;
    let draft: MergeDraft = parse_body(&ctx.request)?;
    let request = MergeRequest::parse(draft, survivor)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let undo_days = ctx.app.config.merge_undo_days;
    ctx.write(async |uow| {
        let outcome = service::merge(uow, survivor, &request, if_match.as_ref(), undo_days).await?;
        match &outcome.record {
            None => json(StatusCode::OK, &MergeView::of_dry_run(&outcome)),
            Some(record) => {
                let mut created = json(StatusCode::CREATED, &MergeView::of_record(record))?;
                let location = format!("/api/v1/merges/{}", record.id);
                response::set_header(&mut created, header::LOCATION, &location);
                Ok(created)
            }
        }
    })
    .await
}

/// `GET /api/v1/merges/{id}`.
pub async fn get_merge(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<MergeId>("id")?;
    let record = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id, false).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    json(StatusCode::OK, &MergeView::of_record(&record))
}

/// `POST /api/v1/merges/{id}/undo`: 200 with the merge, now undone; 409 naming every later change
/// in the way.
pub async fn undo_merge(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<MergeId>("id")?;
    ctx.write(async |uow| {
        let record = service::undo(uow, id).await?;
        json(StatusCode::OK, &MergeView::of_record(&record))
    })
    .await
}
