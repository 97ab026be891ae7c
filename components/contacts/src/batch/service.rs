//! A batch of contact changes. Each operation is the single-contact service call it names, made in
//! a savepoint of the batch's one transaction: a failed operation leaves nothing behind and the
//! others go on, and each is audited and evented as if made alone (the batch's actor, its request
//! id as correlation id). An atomic batch with any failure is rolled back whole.

use super::set_wise::{self, Answer, Item};
use crate::custom_fields;
use crate::handlers::email_keys_in;
use crate::repository;
use crate::service::{self, Upserted};
use crm_domain::contact::batch::{
    BatchDraft, BatchResults, Operation, OperationDraft, OperationResult, Outcome,
};
use crm_domain::contact::ContactDraft;
use crm_domain::FieldError;
use crm_platform::document::from_value;
use crm_platform::store::expected::ExpectedVersion;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use http::StatusCode;
use serde_json::Value;

/// Applies every operation of `draft` in order and answers one result for each; an atomic batch
/// with a failed operation is `ApiError::BatchNotApplied` (its unit of work then rolls back). Runs
/// of consecutive creates and upserts are made set-wise where that answers as one by one would
/// ([`set_wise`]); every other operation is made alone, in a savepoint.
pub async fn apply(uow: &UnitOfWork<'_>, draft: BatchDraft) -> Result<BatchResults, ApiError> {
    let total = draft.operations.len();
    let mut names = Vec::with_capacity(total);
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(total);
    let mut operations: Vec<Option<Operation>> = Vec::with_capacity(total);
    for raw in draft.operations {
        names.push(Operation::name_in(&raw));
        match read(raw) {
            Ok(operation) => {
                operations.push(Some(operation));
                answers.push(None);
            }
            Err(error) => {
                operations.push(None);
                answers.push(Some(Err(error)));
            }
        }
    }
    let settings = uow.settings().await?;
    let fields = custom_fields::repository::list(uow.tx(), uow.tenant(), true).await?;
    let mut index = 0;
    while index < total {
        let run = operations[index..]
            .iter()
            .take_while(|operation| {
                matches!(
                    operation,
                    Some(Operation::Create { .. } | Operation::Upsert { .. })
                )
            })
            .count();
        if run >= 2 {
            let items: Vec<Item> = operations[index..index + run]
                .iter()
                .flatten()
                .map(|operation| match operation {
                    Operation::Upsert { contact } => Item {
                        body: contact,
                        upsert: true,
                    },
                    Operation::Create { contact } | Operation::Update { patch: contact, .. } => {
                        Item {
                            body: contact,
                            upsert: false,
                        }
                    }
                    Operation::Delete { .. } => unreachable!("runs hold creates and upserts"),
                })
                .collect();
            if let Some(made) = set_wise::apply(uow, &items, &settings, &fields).await? {
                for (offset, answer) in made.into_iter().enumerate() {
                    answers[index + offset] = Some(answer);
                }
                index += run;
                continue;
            }
        }
        for position in index..index + run.max(1) {
            if let Some(operation) = &operations[position] {
                answers[position] = Some(
                    uow.tx()
                        .savepoint(async || run_one(uow, operation).await)
                        .await?,
                );
            }
        }
        index += run.max(1);
    }

    // The fields at fault of every failed operation, pointed from the batch's root.
    let mut faults = Vec::new();
    let mut results = Vec::with_capacity(total);
    for (position, ((op, answer), operation)) in
        names.into_iter().zip(answers).zip(&operations).enumerate()
    {
        let answer = answer.unwrap_or_else(|| {
            Err(ApiError::Internal(anyhow::anyhow!(
                "operation {position} was not answered"
            )))
        });
        let at = format!("/operations/{position}");
        results.push(match (answer, operation) {
            (Ok((status, outcome, contact)), _) => OperationResult {
                op,
                status: status.as_u16(),
                outcome,
                contact,
                problem: None,
            },
            (Err(error), _) if error.status().is_server_error() => return Err(error),
            (Err(error), None) => failed(op, &error, &at, &at, &mut faults),
            (Err(error), Some(operation)) => {
                let body_at = format!("{at}{}", operation.body_member());
                let error = name_the_duplicate(uow, operation, error).await?;
                failed(op, &error, &at, &body_at, &mut faults)
            }
        });
    }
    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    if draft.atomic && failed > 0 {
        return Err(not_applied(results, failed, faults));
    }
    Ok(BatchResults {
        atomic: draft.atomic,
        succeeded: results.len() - failed,
        failed,
        results,
    })
}

/// Reads one operation; its errors point from the operation.
fn read(raw: Value) -> Result<Operation, ApiError> {
    if !raw.is_object() {
        return Err(ApiError::invalid_field(
            "",
            "invalid_type",
            "an operation is an object with an `op`",
        ));
    }
    from_value::<OperationDraft>(raw)?
        .read()
        .map_err(|_| ApiError::NotFound)
}

/// Makes one operation: the single-contact service call, its status as that route answers.
async fn run_one(uow: &UnitOfWork<'_>, operation: &Operation) -> Answer {
    let expected = |version: &Option<i64>| version.map(|v| ExpectedVersion::Versions(vec![v]));
    Ok(match operation {
        Operation::Create { contact } => {
            let draft: ContactDraft = from_value(contact.clone())?;
            let created = service::create(uow, draft).await?;
            (StatusCode::CREATED, Outcome::Created, Some(created))
        }
        Operation::Upsert { contact } => upsert(uow, contact).await?,
        Operation::Update { id, version, patch } => {
            if !patch.is_object() {
                return Err(ApiError::invalid_field(
                    "",
                    "invalid_type",
                    "a merge patch is a JSON object",
                ));
            }
            let updated = service::update(uow, *id, patch, expected(version).as_ref()).await?;
            (StatusCode::OK, Outcome::Updated, Some(updated))
        }
        Operation::Delete { id, version } => {
            service::delete(uow, *id, expected(version).as_ref()).await?;
            (StatusCode::NO_CONTENT, Outcome::Deleted, None)
        }
    })
}

/// An upsert keyed by the contact's primary email. A concurrent create of the same email makes
/// the insert fail on the unique key; tried once more, it finds and updates that contact.
async fn upsert(uow: &UnitOfWork<'_>, body: &Value) -> Answer {
    let draft: ContactDraft = from_value(body.clone())?;
    let key = service::upsert_key(&draft)?;
    let attempt = async || service::upsert(uow, draft.clone(), body, &key, None).await;
    let upserted = match uow.tx().savepoint(attempt).await? {
        Err(ApiError::Conflict { .. }) => attempt().await?,
        other => other?,
    };
    Ok(match upserted {
        Upserted::Created(contact) => (StatusCode::CREATED, Outcome::Created, Some(contact)),
        Upserted::Updated(contact) => (StatusCode::OK, Outcome::Updated, Some(contact)),
    })
}

/// Adds `existing_contact_id` to a duplicate-email conflict, as the single-contact routes do.
async fn name_the_duplicate(
    uow: &UnitOfWork<'_>,
    operation: &Operation,
    error: ApiError,
) -> Result<ApiError, ApiError> {
    let ApiError::Conflict {
        detail,
        errors,
        mut extra,
    } = error
    else {
        return Ok(error);
    };
    let body = match operation {
        Operation::Create { contact } | Operation::Upsert { contact } => Some(contact),
        Operation::Update { patch, .. } => Some(patch),
        Operation::Delete { .. } => None,
    };
    if let Some(body) = body.filter(|_| errors.iter().any(|e| e.code == "duplicate")) {
        let holder =
            repository::live_owner_of_email(uow.tx(), uow.tenant(), email_keys_in(body)).await?;
        if let Some(holder) = holder {
            extra.insert("existing_contact_id".into(), holder.to_string().into());
        }
    }
    Ok(ApiError::Conflict {
        detail,
        errors,
        extra,
    })
}

/// A failed operation's result: its problem, with field pointers from the batch's root (`body_at`
/// is where the fields its error names start). Its fields at fault join `faults`: its own, or
/// one naming the operation (`at`) for an error without any (a 404, a 412).
fn failed(
    op: String,
    error: &ApiError,
    at: &str,
    body_at: &str,
    faults: &mut Vec<FieldError>,
) -> OperationResult {
    let own: Vec<FieldError> = error
        .field_errors()
        .iter()
        .map(|e| {
            let field = if e.field.is_empty() || e.field.starts_with('/') {
                format!("{body_at}{}", e.field)
            } else {
                e.field.clone()
            };
            FieldError::new(field, e.code, e.message.clone())
        })
        .collect();
    let mut problem = error.to_problem(None);
    if own.is_empty() {
        let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
        faults.push(FieldError::new(at, code_of(error.status()), detail));
    } else {
        problem["errors"] = serde_json::json!(own);
        faults.extend(own);
    }
    OperationResult {
        op,
        status: error.status().as_u16(),
        outcome: Outcome::Failed,
        contact: None,
        problem: Some(problem),
    }
}

/// The problem of an atomic batch with failures: the first failure's status, the fields at fault
/// of every failed operation, and every result, those that would have succeeded as `424
/// not_applied`.
fn not_applied(results: Vec<OperationResult>, failed: usize, faults: Vec<FieldError>) -> ApiError {
    let total = results.len();
    let status = results
        .iter()
        .find(|r| r.outcome == Outcome::Failed)
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let results: Vec<OperationResult> = results
        .into_iter()
        .map(|mut result| {
            if result.outcome != Outcome::Failed {
                result.status = StatusCode::FAILED_DEPENDENCY.as_u16();
                result.outcome = Outcome::NotApplied;
                result.contact = None;
            }
            result
        })
        .collect();
    ApiError::BatchNotApplied {
        status,
        detail: format!("{failed} of {total} operations failed; nothing was written"),
        errors: faults,
        results: serde_json::to_value(results).unwrap_or_default(),
    }
}

/// The code of an operation that failed without a field error: by its status.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PRECONDITION_FAILED => "stale_version",
        StatusCode::PRECONDITION_REQUIRED => "version_required",
        StatusCode::CONFLICT => "conflict",
        _ => "failed",
    }
}
