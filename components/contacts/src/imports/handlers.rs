//! Import handlers: HTTP in (a JSON body, a part's raw bytes, a path id), one service call or read,
//! HTTP out. Starting a job wakes the import worker.

use super::repository::{self, RowError};
use super::service;
use bytes::Bytes;
use crm_domain::csv;
use crm_domain::import::{Import, ImportDraft, MAX_PARTS};
use crm_domain::{ImportId, TenantId};
use crm_platform::http::json::parse_body;
use crm_platform::http::pagination::{CursorTime, Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{json, set_header};
use crm_platform::http::{ApiResponse, ResponseBody};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, App, RequestContext};
use futures::StreamExt;
use http::{header, StatusCode};
use std::sync::Arc;

/// `POST /api/v1/imports`: a job awaiting its upload; 201 with `Location`.
pub async fn create_import(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: ImportDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let import = service::create(uow, draft).await?;
        let mut response = json(StatusCode::CREATED, &import)?;
        set_header(
            &mut response,
            header::LOCATION,
            &format!("/api/v1/imports/{}", import.id),
        );
        Ok(response)
    })
    .await
}

/// `GET /api/v1/imports`: the tenant's jobs, newest first, keyset-paginated.
pub async fn list_imports(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor"])?;
    let page: PageRequest<(CursorTime, ImportId)> = PageRequest::from_query(&query)?;
    let rows = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, page.after.as_ref(), page.fetch_limit()).await
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|(job, key)| (job.import, key))
        .collect();
    json(
        StatusCode::OK,
        &Page::from_keyed_rows(rows, page.limit, |import: &Import, key: &String| {
            (key.clone(), import.id)
        }),
    )
}

/// `GET /api/v1/imports/{id}`: the job, its progress and counts.
pub async fn get_import(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ImportId>("id")?;
    let import = existing(&ctx.app, tenant, id).await?;
    json(StatusCode::OK, &import)
}

/// `PUT /api/v1/imports/{id}/parts/{number}`: part `number` of the file (1, 2, ... in order), its
/// bytes as they are, whatever the content type; read into rows at once.
pub async fn upload_part(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ImportId>("id")?;
    let number: i64 = ctx
        .param("number")?
        .parse()
        .ok()
        .filter(|number| (1..=MAX_PARTS).contains(number))
        .ok_or_else(|| ApiError::bad_request(format!("a part's number is 1 to {MAX_PARTS}")))?;
    let bytes = ctx.request.body.clone();
    ctx.write(async |uow| {
        let import = service::add_part(uow, id, number, &bytes).await?;
        json(StatusCode::OK, &import)
    })
    .await
}

/// `POST /api/v1/imports/{id}/start`: the upload is complete; the job is queued (202) and the
/// worker woken.
pub async fn start_import(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ImportId>("id")?;
    let response = ctx
        .write(async |uow| {
            let import = service::start(uow, id).await?;
            json(StatusCode::ACCEPTED, &import)
        })
        .await?;
    ctx.app.job_wakeup.publish().await;
    Ok(response)
}

/// `POST /api/v1/imports/{id}/cancel`: the job stops; what it imported stays.
pub async fn cancel_import(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ImportId>("id")?;
    ctx.write(async |uow| {
        let import = service::cancel(uow, id).await?;
        json(StatusCode::OK, &import)
    })
    .await
}

/// Errors per page of the errors download.
const ERRORS_PAGE: i64 = 5_000;

/// `GET /api/v1/imports/{id}/errors`: every problem of every row, as CSV (`row`, `column`, `code`,
/// `message`), streamed.
pub async fn import_errors(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ImportId>("id")?;
    existing(&ctx.app, tenant, id).await?;
    let app = ctx.app.clone();
    let header = csv::line(&["row", "column", "code", "message"]);
    let pages = futures::stream::try_unfold(Some((0i64, -1i64)), move |after| {
        let app = app.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let errors = app
                .db
                .read(tenant, async |tx: &Tx| {
                    repository::errors(tx, tenant, id, after, ERRORS_PAGE).await
                })
                .await?;
            let next = (errors.len() as i64 == ERRORS_PAGE)
                .then(|| errors.last().map(|e| (e.row, e.position)))
                .flatten();
            let chunk: String = errors.iter().map(error_line).collect();
            Ok::<_, ApiError>(Some((Bytes::from(chunk), next)))
        }
    });
    let chunks = futures::stream::once(async move { Ok(Bytes::from(header)) }).chain(pages);
    let mut response = ApiResponse::new(ResponseBody::streamed(Box::pin(chunks)));
    set_header(
        &mut response,
        header::CONTENT_TYPE,
        "text/csv; charset=utf-8; header=present",
    );
    set_header(
        &mut response,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"import-{id}-errors.csv\""),
    );
    Ok(response)
}

fn error_line(error: &RowError) -> String {
    csv::line(&[
        &error.row.to_string(),
        error.problem.column.as_deref().unwrap_or_default(),
        &error.problem.code,
        &error.problem.message,
    ])
}

async fn existing(app: &Arc<App>, tenant: TenantId, id: ImportId) -> Result<Import, ApiError> {
    app.db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id, false).await
        })
        .await?
        .map(|job| job.import)
        .ok_or(ApiError::NotFound)
}
