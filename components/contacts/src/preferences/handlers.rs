//! Preference handlers: HTTP in, the preferences service or a read, HTTP out.

use super::{repository, service};
use crm_domain::ContactId;
use crm_platform::http::etag;
use crm_platform::http::json::parse_merge_patch;
use crm_platform::http::response;
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `GET /api/v1/contacts/{id}/preferences`: with its `ETag` (version 0 until first set).
pub async fn get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let preferences = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            Ok(repository::find(tx, tenant, contact, false).await?)
        })
        .await?;
    response::versioned(
        &ctx.request.headers,
        &preferences,
        preferences.version,
        None,
    )
}

/// `PATCH /api/v1/contacts/{id}/preferences`: JSON Merge Patch of `preferred_channel`,
/// `language`, `time_zone`, `do_not_contact`; `If-Match`.
pub async fn update(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        let preferences = service::update(uow, contact, &patch, if_match.as_ref()).await?;
        response::entity(StatusCode::OK, &preferences, preferences.version, None)
    })
    .await
}
