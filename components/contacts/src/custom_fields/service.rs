//! Custom field definitions, whoever changes them: at most 200 per tenant, keys unique and never
//! changed, types never changed, archived rather than deleted; audited and evented as
//! `custom_field.*`. Nothing here knows HTTP.

use super::repository::{self, KEY_TAKEN};
use crm_domain::custom_field::{
    CustomField, CustomFieldDraft, NewCustomField, MAX_FIELDS_PER_TENANT,
};
use crm_domain::event::CustomFieldAction;
use crm_domain::CustomFieldId;
use crm_platform::document::{from_value, merge_patch};
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::limits;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;

/// Defines a field.
pub async fn create(
    uow: &UnitOfWork<'_>,
    draft: CustomFieldDraft,
) -> Result<CustomField, ApiError> {
    let settings = uow.settings().await?;
    let field = NewCustomField::parse(draft, uow.region(&settings))?;
    if limits::count_locked(uow.tx(), uow.tenant(), "custom_fields").await? >= MAX_FIELDS_PER_TENANT
    {
        return Err(ApiError::conflict(
            format!("a tenant has at most {MAX_FIELDS_PER_TENANT} custom fields"),
            "",
            "too_many_fields",
            "archived fields count too",
        ));
    }
    let created = repository::insert(uow.tx(), uow.tenant(), &field)
        .await
        .map_err(on_constraint(KEY_TAKEN, key_taken))?;
    uow.record_change(CustomFieldAction::Created, created.id, None, &created)
        .await?;
    Ok(created)
}

/// Merges `patch` (RFC 7396) into the definition when `expected` admits its version. Its key and
/// type do not change (422); everything else may, archiving included.
pub async fn update(
    uow: &UnitOfWork<'_>,
    id: CustomFieldId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<CustomField, ApiError> {
    let settings = uow.settings().await?;
    let before = repository::find(uow.tx(), uow.tenant(), id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    expected::check(expected, settings.require_if_match, before.version)?;
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: CustomFieldDraft = from_value(view)?;
    let field = NewCustomField::parse(draft, uow.region(&settings))?;
    if field.key != before.key {
        return Err(ApiError::invalid_field(
            "/key",
            "immutable",
            "a field's key never changes; define another field",
        ));
    }
    if field.kind != before.kind {
        return Err(ApiError::invalid_field(
            "/type",
            "immutable",
            "a field's type never changes; define another field",
        ));
    }
    stored_values_hold(uow, &before, &field, uow.region(&settings)).await?;
    let after = repository::update(uow.tx(), uow.tenant(), id, &field).await?;
    uow.record_change(CustomFieldAction::Updated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Refuses new rules that values already stored would break (409 `values_conflict`, saying how
/// many): a value they no longer admit (a removed option, a tighter bound), a required field some
/// contacts lack (with no default to fill in), a unique field whose values repeat. An archived
/// field's rules are not enforced, so archiving is never refused.
async fn stored_values_hold(
    uow: &UnitOfWork<'_>,
    before: &CustomField,
    field: &NewCustomField,
    region: crm_domain::Region,
) -> Result<(), ApiError> {
    if field.archived {
        return Ok(());
    }
    let (tx, tenant) = (uow.tx(), uow.tenant());
    let mut broken = 0;
    if field.options != before.options
        || (field.min_length, field.max_length) != (before.min_length, before.max_length)
        || (field.min, field.max) != (before.min, before.max)
    {
        for (_, value) in repository::stored_values(tx, tenant, &field.key).await? {
            if field
                .value(&value, region, "")
                .map_or(true, |stored| stored != value)
            {
                broken += 1;
            }
        }
    }
    let conflict = |count: i64, what: &str| {
        ApiError::conflict(
            format!("{count} {what}"),
            "",
            "values_conflict",
            "change those contacts' values first, or archive the field and define another",
        )
    };
    if broken > 0 {
        return Err(conflict(
            broken,
            "contacts hold values the new rules refuse",
        ));
    }
    if field.required && field.default.is_none() && !before.required {
        let missing = repository::missing_values(tx, tenant, &field.key).await?;
        if missing > 0 {
            return Err(conflict(
                missing,
                "contacts have no value for a field that would be required",
            ));
        }
    }
    if field.unique && !before.unique {
        let shared = repository::shared_values(tx, tenant, &field.key).await?;
        if shared > 0 {
            return Err(conflict(
                shared,
                "values are held by more than one contact, and the field would be unique",
            ));
        }
    }
    Ok(())
}

fn key_taken() -> ApiError {
    ApiError::conflict(
        "another custom field has this key",
        "/key",
        "key_taken",
        "keys are unique within the tenant, archived fields included",
    )
}
