//! Import jobs, whoever drives them: created with their options, fed their file part by part (each
//! part read into rows at once, so that a file never has to be held whole), started, cancelled, and
//! applied one bounded step at a time. A step is one transaction: it takes the job's next rows,
//! makes each a create, an upsert or an update through the contacts' batch (so each row is
//! validated, audited and evented as if written alone), records each row's problems, and moves the
//! job past them. A step that dies (a crash, a lost connection) leaves nothing behind, and the next
//! one starts from the same row: no row is applied twice. Nothing here knows HTTP.

use super::repository::{self, Job, RowError, StepCounts};
use crate::batch::operations;
use crate::custom_fields::repository as custom_fields;
use crm_domain::contact::EmailAddress;
use crm_domain::custom_field::CustomField;
use crm_domain::import::mapping::{ndjson_contact, Mapping};
use crm_domain::import::reader::{self, read_part, Progress, RowProblem};
use crm_domain::import::{
    Dedupe, Format, Import, ImportAction, ImportDraft, ImportOptions, ImportStatus, MAX_PARTS,
};
use crm_domain::list::{ListKind, MembershipChange};
use crm_domain::{Actor, ImportId, TenantId};
use crm_platform::store::db::{SqlValue, Tx};
use crm_platform::store::lists as store_lists;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::{ApiError, App};
use crm_segments_core::lists::service as list_service;
use crm_segments_core::tags::service as tag_service;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Rows one step applies: one batch of the contacts' batch route.
pub const STEP_ROWS: i64 = 1_000;
/// How long a worker holds a job between steps; a worker that dies loses it after this.
pub const LEASE_SECONDS: i64 = 60;
/// An import that wrote at least this many contacts refreshes the planner's statistics of the
/// tables it wrote when it completes (`analyze_contacts`, migration 0035), so that a list or an
/// export read right after it is planned for the rows it added, not for the tables before it.
pub const ANALYZE_AFTER_ROWS: i64 = 10_000;

/// Creates a job awaiting its upload.
pub async fn create(uow: &UnitOfWork<'_>, draft: ImportDraft) -> Result<Import, ApiError> {
    let fields = custom_fields::list(uow.tx(), uow.tenant(), true).await?;
    let options = ImportOptions::parse(draft, &fields)?;
    if let Some(list) = options.list_id {
        let found = store_lists::definition(uow.tx(), uow.tenant(), list).await?;
        match found {
            None => {
                return Err(ApiError::invalid_field(
                    "/list_id",
                    "not_found",
                    "no list of this tenant has this id",
                ))
            }
            Some(found) if found.summary.kind == ListKind::Smart => {
                return Err(ApiError::invalid_field(
                    "/list_id",
                    "smart_list",
                    "a smart list's members are those its filter matches: name a static list",
                ))
            }
            Some(_) => {}
        }
    }
    let id = ImportId::generate();
    let job = repository::insert(uow.tx(), uow.tenant(), id, &options, uow.actor()).await?;
    uow.record_change(ImportAction::Created, id, None::<&Import>, &job.import)
        .await?;
    Ok(job.import)
}

/// The job, locked against concurrent changes; 404 when the tenant has none with this id.
async fn locked(uow: &UnitOfWork<'_>, id: ImportId) -> Result<Job, ApiError> {
    repository::find(uow.tx(), uow.tenant(), id, true)
        .await?
        .ok_or(ApiError::NotFound)
}

fn progress_of(job: &Job) -> Progress {
    Progress {
        header: job.import.columns.clone(),
        next_row: job.next_row,
        tail: job.tail.clone(),
        started: job.import.upload.parts > 0,
    }
}

/// Adds part `number` (1, 2, ... in order) of the file: read into rows now. The first part of a
/// CSV file fixes its delimiter and header, and the header is checked against the mapping then.
pub async fn add_part(
    uow: &UnitOfWork<'_>,
    id: ImportId,
    number: i64,
    bytes: &[u8],
) -> Result<Import, ApiError> {
    let mut job = locked(uow, id).await?;
    if job.status() != ImportStatus::AwaitingUpload {
        return Err(upload_closed(job.status()));
    }
    let expected = job.import.upload.parts + 1;
    if number != expected || number > MAX_PARTS {
        return Err(ApiError::conflict(
            format!("parts arrive in order, one each: the next is part {expected}"),
            "",
            "part_out_of_order",
            &format!("send part {expected} (at most {MAX_PARTS} parts)"),
        ));
    }
    if job.import.upload.parts == 0 && job.options().format == Format::Csv {
        let delimiter = job.options().delimiter_for(bytes);
        job.import.options.delimiter = Some(char::from(delimiter).to_string());
    }
    record(uow, &job, bytes, ImportStatus::AwaitingUpload).await?;
    find(uow.tx(), uow.tenant(), id).await
}

/// Reads `bytes` after what the job has read (none: the end of the upload, which completes the
/// record the last part ended inside), checks a header read now against the mapping, and stores
/// the rows with the job moved to `status`.
async fn record(
    uow: &UnitOfWork<'_>,
    job: &Job,
    bytes: &[u8],
    status: ImportStatus,
) -> Result<(), ApiError> {
    let options = job.options();
    let last = status != ImportStatus::AwaitingUpload;
    let read = read_part(
        options.format,
        options.delimiter_for(bytes),
        &progress_of(job),
        bytes,
        last,
    )
    .map_err(|problem| ApiError::invalid_field("", "unreadable_file", problem.0))?;
    if job.import.columns.is_none() {
        if let Some(header) = &read.progress.header {
            let fields = custom_fields::list(uow.tx(), uow.tenant(), true).await?;
            Mapping::resolve(header, &options.mapping, &fields)?;
        }
    }
    repository::record_part(
        uow.tx(),
        uow.tenant(),
        job.import.id,
        options,
        bytes.len() as i64,
        &read,
        status,
    )
    .await?;
    Ok(())
}

/// Ends the upload and queues the job: the record the last part ended inside is read now.
pub async fn start(uow: &UnitOfWork<'_>, id: ImportId) -> Result<Import, ApiError> {
    let job = locked(uow, id).await?;
    if job.status() != ImportStatus::AwaitingUpload {
        return Err(upload_closed(job.status()));
    }
    if job.import.upload.parts == 0 {
        return Err(ApiError::conflict(
            "nothing was uploaded",
            "",
            "nothing_uploaded",
            "upload part 1 of the file first",
        ));
    }
    record(uow, &job, b"", ImportStatus::Queued).await?;
    let import = find(uow.tx(), uow.tenant(), id).await?;
    uow.record_change(ImportAction::Started, id, Some(&job.import), &import)
        .await?;
    Ok(import)
}

/// Stops the job: what it imported stays; the rest of its rows are dropped.
pub async fn cancel(uow: &UnitOfWork<'_>, id: ImportId) -> Result<Import, ApiError> {
    let job = locked(uow, id).await?;
    if job.status().is_final() {
        return Err(ApiError::conflict(
            format!("the import has ended ({})", job.status().as_str()),
            "/status",
            "import_ended",
            "an import that has ended cannot be cancelled",
        ));
    }
    repository::set_status(uow.tx(), uow.tenant(), id, ImportStatus::Cancelled, None).await?;
    let import = find(uow.tx(), uow.tenant(), id).await?;
    uow.record_change(ImportAction::Cancelled, id, Some(&job.import), &import)
        .await?;
    Ok(import)
}

fn upload_closed(status: ImportStatus) -> ApiError {
    ApiError::conflict(
        format!("the upload is closed: the import is {}", status.as_str()),
        "/status",
        "upload_closed",
        "parts are uploaded, and the import started, while it awaits its upload",
    )
}

/// The job `id` of `tenant`; 404 when it has none.
pub async fn find(tx: &Tx, tenant: TenantId, id: ImportId) -> Result<Import, ApiError> {
    Ok(repository::find(tx, tenant, id, false)
        .await?
        .ok_or(ApiError::NotFound)?
        .import)
}

/// Runs `work` as a change made by job `id` of `tenant` itself (actor `import_job`, correlation id
/// `import-<id>`).
async fn as_job<T>(
    app: &App,
    tenant: TenantId,
    id: ImportId,
    work: impl AsyncFnOnce(&UnitOfWork<'_>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let actor = Actor::ImportJob(id.to_string());
    let correlation = format!("import-{id}");
    app.unit_of_work(tenant, &actor, &correlation, work).await
}

/// What a step left to do.
enum Stepped {
    /// More rows wait.
    More,
    /// The job has ended (or had): nothing is left.
    Ended,
    /// The job completed now, having written enough contacts for statistics to be stale.
    CompletedInBulk,
}

/// One step of job `id` of `tenant`, by the job itself as actor: its next rows applied, or the job
/// completed when none are left. Whether more work remains.
pub async fn step(app: &App, tenant: TenantId, id: ImportId) -> Result<bool, ApiError> {
    let stepped = as_job(app, tenant, id, async |uow: &UnitOfWork<'_>| {
        let Some(job) = repository::find(uow.tx(), tenant, id, true).await? else {
            return Ok(Stepped::Ended);
        };
        match job.status() {
            ImportStatus::Queued => {
                repository::set_status(uow.tx(), tenant, id, ImportStatus::Running, None).await?;
            }
            ImportStatus::Running => {}
            _ => return Ok(Stepped::Ended),
        }
        let rows = repository::next_rows(uow.tx(), tenant, id, job.last_row, STEP_ROWS).await?;
        let Some(last) = rows.last().map(|row| row.row) else {
            repository::set_status(uow.tx(), tenant, id, ImportStatus::Completed, None).await?;
            let import = find(uow.tx(), tenant, id).await?;
            uow.record_change(ImportAction::Completed, id, Some(&job.import), &import)
                .await?;
            let written = import.rows.created + import.rows.updated;
            return Ok(
                match job.options().dry_run || written < ANALYZE_AFTER_ROWS {
                    true => Stepped::Ended,
                    false => Stepped::CompletedInBulk,
                },
            );
        };
        let fields = custom_fields::list(uow.tx(), tenant, true).await?;
        let (counts, errors) = if job.options().dry_run {
            uow.tx()
                .trial(async || apply_rows(uow, &job, &rows, &fields).await)
                .await??
        } else {
            apply_rows(uow, &job, &rows, &fields).await?
        };
        repository::insert_errors(uow.tx(), tenant, id, &errors).await?;
        repository::advance(uow.tx(), tenant, id, last, counts, LEASE_SECONDS).await?;
        Ok(Stepped::More)
    })
    .await?;
    if let Stepped::CompletedInBulk = stepped {
        // Best effort, after the job's completion committed: statistics a little stale are no
        // reason to fail an import (a concurrent index build holds the tables, for instance).
        if let Err(error) = repository::analyze_contacts(&app.db).await {
            tracing::warn!(error = ?error, import = %id, "refreshing statistics after an import failed");
        }
    }
    Ok(matches!(stepped, Stepped::More))
}

/// Marks job `id` failed with `reason` (a step that cannot succeed, however often it is tried).
pub async fn fail(app: &App, tenant: TenantId, id: ImportId, reason: &str) -> Result<(), ApiError> {
    as_job(app, tenant, id, async |uow: &UnitOfWork<'_>| {
        let Some(job) = repository::find(uow.tx(), tenant, id, true).await? else {
            return Ok(());
        };
        if job.status().is_final() {
            return Ok(());
        }
        repository::set_status(uow.tx(), tenant, id, ImportStatus::Failed, Some(reason)).await?;
        let import = find(uow.tx(), tenant, id).await?;
        uow.record_change(ImportAction::Failed, id, Some(&job.import), &import)
            .await
    })
    .await
}

/// A row about to be written: its number, and its operation of the contacts' batch.
struct Pending {
    row: i64,
    operation: Value,
}

/// Applies `rows`: each read through the job's mapping, deduplicated as its options say, and
/// written through the contacts' batch, one result per row.
async fn apply_rows(
    uow: &UnitOfWork<'_>,
    job: &Job,
    rows: &[reader::ReadRow],
    fields: &[CustomField],
) -> Result<(StepCounts, Vec<RowError>), ApiError> {
    let options = job.options();
    let mapping = match (&job.import.columns, options.format) {
        (Some(header), Format::Csv) => Some(Mapping::resolve(header, &options.mapping, fields)?),
        _ => None,
    };
    let delimiter = options.delimiter_for(b"");
    let mut counts = StepCounts::default();
    let mut errors = Vec::new();
    let mut bodies = Vec::with_capacity(rows.len());
    let mut tags_of: HashMap<i64, Vec<String>> = HashMap::new();
    for row in rows {
        counts.processed += 1;
        let read = match &row.record {
            Err(problem) => Err(vec![problem.clone()]),
            Ok(text) => match &mapping {
                Some(mapping) => reader::cells(text, delimiter)
                    .map_err(|problem| vec![problem])
                    .and_then(|cells| mapping.contact(&cells)),
                None => ndjson_contact(text),
            },
        };
        match read {
            Ok((body, tags)) => {
                if !tags.is_empty() {
                    tags_of.insert(row.row, tags);
                }
                bodies.push((row.row, body));
            }
            Err(problems) => fail_row(&mut errors, &mut counts, row.row, problems),
        }
    }
    let mut imported = Vec::new();
    for segment in segments(options, bodies) {
        let (pending, skipped) = operations_for(uow, options, segment).await?;
        counts.skipped += skipped;
        if pending.is_empty() {
            continue;
        }
        let raw: Vec<Value> = pending.iter().map(|p| p.operation.clone()).collect();
        let answered = operations::apply(uow, raw).await?;
        for (pending, answered) in pending.iter().zip(answered) {
            let contact = match answered.answer {
                Ok(done) => {
                    if done.outcome == "created" {
                        counts.created += 1;
                    } else {
                        counts.updated += 1;
                    }
                    done.value.map(|changed| changed.contact.id)
                }
                Err(error) if error.status().is_server_error() => return Err(error),
                Err(error) => {
                    let problems = problems_of(&error, mapping.as_ref());
                    fail_row(&mut errors, &mut counts, pending.row, problems);
                    None
                }
            };
            let Some(contact) = contact else { continue };
            imported.push(contact);
            if let Some(tags) = tags_of.get(&pending.row) {
                // The contact stands without its tags; its row says why they are missing.
                let attached = uow
                    .tx()
                    .savepoint(async || tag_service::attach_named(uow, contact, tags).await)
                    .await?;
                match attached {
                    Ok(_) => {}
                    Err(error) if error.status().is_server_error() => return Err(error),
                    Err(error) => {
                        for problem in problems_of(&error, mapping.as_ref()) {
                            errors.push(RowError {
                                row: pending.row,
                                position: errors.len() as i64,
                                problem,
                            });
                        }
                    }
                }
            }
        }
    }
    if let (Some(list), false) = (options.list_id, imported.is_empty()) {
        let add = imported
            .iter()
            .map(|id| (id.to_string(), Some(*id)))
            .collect();
        list_service::change_members(
            uow,
            list,
            MembershipChange {
                add,
                remove: Vec::new(),
            },
        )
        .await?;
    }
    Ok((counts, errors))
}

/// Counts `row` failed and records its `problems`.
fn fail_row(
    errors: &mut Vec<RowError>,
    counts: &mut StepCounts,
    row: i64,
    problems: Vec<RowProblem>,
) {
    counts.failed += 1;
    for (position, problem) in problems.into_iter().enumerate() {
        errors.push(RowError {
            row,
            position: position as i64,
            problem,
        });
    }
}

/// The rows in runs that can be written together: all of them, but for `update_by_external_id` a
/// run ends before a row whose external id an earlier row of the run has (that row must see the
/// contact the earlier one writes).
fn segments(options: &ImportOptions, bodies: Vec<(i64, Value)>) -> Vec<Vec<(i64, Value)>> {
    let key = match (&options.dedupe, &options.external_id) {
        (Dedupe::UpdateByExternalId, Some(key)) => key.clone(),
        _ => return vec![bodies],
    };
    let mut runs: Vec<Vec<(i64, Value)>> = vec![Vec::new()];
    let mut seen = HashSet::new();
    for (row, body) in bodies {
        if let Some(value) = body["custom"].get(&key) {
            if !seen.insert(value.to_string()) {
                runs.push(Vec::new());
                seen = HashSet::from([value.to_string()]);
            }
        }
        if let Some(run) = runs.last_mut() {
            run.push((row, body));
        }
    }
    runs
}

/// Each row's operation as the job's dedupe rule makes it, and how many rows it skips.
async fn operations_for(
    uow: &UnitOfWork<'_>,
    options: &ImportOptions,
    bodies: Vec<(i64, Value)>,
) -> Result<(Vec<Pending>, i64), ApiError> {
    let create = |row: i64, body: Value| Pending {
        row,
        operation: json!({"op": "create", "contact": body}),
    };
    match options.dedupe {
        Dedupe::CreateOnly => Ok((
            bodies
                .into_iter()
                .map(|(row, body)| create(row, body))
                .collect(),
            0,
        )),
        Dedupe::UpdateByEmail => Ok((
            bodies
                .into_iter()
                .map(|(row, body)| {
                    let has_email = body["emails"].as_array().is_some_and(|e| !e.is_empty());
                    let op = if has_email { "upsert" } else { "create" };
                    Pending {
                        row,
                        operation: json!({"op": op, "contact": body}),
                    }
                })
                .collect(),
            0,
        )),
        Dedupe::SkipDuplicates => {
            let keys_of = |body: &Value| -> Vec<String> {
                body["emails"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|email| email["address"].as_str())
                    .filter_map(|address| EmailAddress::parse(address, "").ok())
                    .map(|address| address.key())
                    .collect()
            };
            let all: Vec<String> = bodies.iter().flat_map(|(_, body)| keys_of(body)).collect();
            let mut seen: HashSet<String> = live_email_keys(uow, &all).await?;
            let mut pending = Vec::with_capacity(bodies.len());
            let mut skipped = 0;
            for (row, body) in bodies {
                let keys = keys_of(&body);
                if keys.iter().any(|key| seen.contains(key)) {
                    skipped += 1;
                    continue;
                }
                seen.extend(keys);
                pending.push(create(row, body));
            }
            Ok((pending, skipped))
        }
        Dedupe::UpdateByExternalId => {
            let key = options.external_id.clone().unwrap_or_default();
            let values: Vec<Value> = bodies
                .iter()
                .filter_map(|(_, body)| body["custom"].get(&key).cloned())
                .collect();
            let holders = holders_of(uow, &key, &values).await?;
            let pending = bodies
                .into_iter()
                .map(|(row, body)| {
                    let holder = body["custom"]
                        .get(&key)
                        .and_then(|value| holders.get(&value.to_string()));
                    match holder {
                        Some(id) => Pending {
                            row,
                            operation: json!({"op": "update", "id": id, "patch": body}),
                        },
                        None => create(row, body),
                    }
                })
                .collect();
            Ok((pending, 0))
        }
    }
}

/// Which of the email `keys` a live contact of the tenant holds.
async fn live_email_keys(
    uow: &UnitOfWork<'_>,
    keys: &[String],
) -> Result<HashSet<String>, ApiError> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(uow
        .tx()
        .query(
            "select address_key from contact_emails
             where tenant_id = $1 and live and address_key = any($2::text[])",
            &[uow.tenant().into(), SqlValue::TextArray(keys.to_vec())],
        )
        .await?
        .iter()
        .filter_map(|row| row.get::<String>("address_key").ok())
        .collect())
}

/// The live contact holding each of `values` in the custom field `key`, by the value's JSON text.
async fn holders_of(
    uow: &UnitOfWork<'_>,
    key: &str,
    values: &[Value],
) -> Result<HashMap<String, String>, ApiError> {
    if values.is_empty() {
        return Ok(HashMap::new());
    }
    let texts = values.iter().map(Value::to_string).collect();
    let rows = uow
        .tx()
        .query(
            "select id::text as id, (custom -> $2)::text as value from contacts
             where tenant_id = $1 and deleted_at is null
               and custom -> $2 = any($3::text[]::jsonb[])",
            &[uow.tenant().into(), key.into(), SqlValue::TextArray(texts)],
        )
        .await?;
    let mut holders = HashMap::new();
    for row in rows {
        let value: String = row.get("value")?;
        // jsonb's text is normalised; compare it with serde's rendering of the same value.
        let value = serde_json::from_str::<Value>(&value).map_or(value, |v| v.to_string());
        holders.insert(value, row.get::<String>("id")?);
    }
    Ok(holders)
}

/// A failed operation's problems, each with the column its field came from.
fn problems_of(error: &ApiError, mapping: Option<&Mapping>) -> Vec<RowProblem> {
    let (fields, detail) = match error {
        ApiError::Validation(errors) => (errors.0.clone(), None),
        ApiError::Conflict { detail, errors, .. } => (errors.clone(), Some(detail.clone())),
        ApiError::NotFound => (
            Vec::new(),
            Some("the contact to update no longer exists".to_owned()),
        ),
        other => (Vec::new(), Some(other.to_string())),
    };
    if fields.is_empty() {
        return vec![RowProblem::of_row(
            "rejected",
            detail.unwrap_or_else(|| error.to_string()),
        )];
    }
    fields
        .into_iter()
        .map(|field| {
            let column = match mapping {
                Some(mapping) => mapping.column_of(&field.field).map(str::to_owned),
                None => Some(field.field.trim_start_matches('/').replace('/', ".")),
            };
            RowProblem {
                column,
                code: field.code.to_owned(),
                message: field.message,
            }
        })
        .collect()
}
