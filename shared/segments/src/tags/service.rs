//! Tag changes, whoever makes them: the vocabulary (audited and evented as `tag.*`) and the set a
//! contact carries (audited and evented as a change of the contact, `contact.tags_changed`, with the
//! tag names before and after). A contact's tags belong to a live contact of the unit's tenant; a
//! tag of another tenant is not one it knows. Nothing here knows HTTP.

use super::repository::{self, NAME_TAKEN, UNKNOWN_TAG};
use crm_domain::event::{ContactTagsChanged, TagAction};
use crm_domain::tag::{
    ContactTags, NewTag, Tag, TagDraft, MAX_TAGS_PER_CONTACT, MAX_TAGS_PER_TENANT,
};
use crm_domain::{ContactId, TagId};
use crm_platform::document::{from_value, merge_patch};
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::limits;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;

/// Adds a tag to the vocabulary; at most [`MAX_TAGS_PER_TENANT`], names unique case-insensitively.
pub async fn create_tag(uow: &UnitOfWork<'_>, draft: TagDraft) -> Result<Tag, ApiError> {
    let tag = NewTag::parse(draft)?;
    if limits::count_locked(uow.tx(), uow.tenant(), "tags").await? >= MAX_TAGS_PER_TENANT {
        return Err(ApiError::conflict(
            format!("a tenant has at most {MAX_TAGS_PER_TENANT} tags"),
            "",
            "too_many_tags",
            "delete a tag first",
        ));
    }
    let created = repository::insert(uow.tx(), uow.tenant(), &tag)
        .await
        .map_err(on_constraint(NAME_TAKEN, name_taken))?;
    uow.record_change(TagAction::Created, created.id, None, &created)
        .await?;
    Ok(created)
}

/// Merges `patch` (RFC 7396) into the tag when `expected` admits its version. A new name shows on
/// every contact that carries the tag at once (they carry it by id).
pub async fn update_tag(
    uow: &UnitOfWork<'_>,
    id: TagId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<Tag, ApiError> {
    let before = locked_tag(uow, id, expected).await?;
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: TagDraft = from_value(view)?;
    let tag = NewTag::parse(draft)?;
    let after = repository::update(uow.tx(), uow.tenant(), id, &tag)
        .await
        .map_err(on_constraint(NAME_TAKEN, name_taken))?;
    uow.record_change(TagAction::Updated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Removes the tag from the vocabulary, detaching it from every contact.
pub async fn delete_tag(
    uow: &UnitOfWork<'_>,
    id: TagId,
    expected: Option<&ExpectedVersion>,
) -> Result<(), ApiError> {
    let before = locked_tag(uow, id, expected).await?;
    repository::delete(uow.tx(), uow.tenant(), id).await?;
    uow.record_removal(TagAction::Deleted, id, &before).await
}

/// Attaches `tag` to the contact (nothing changes if it carries it already).
pub async fn attach(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    tag: TagId,
) -> Result<ContactTags, ApiError> {
    let before = locked_tags(uow, contact).await?;
    if before.tags.iter().any(|t| t.id == tag) {
        return Ok(before);
    }
    if repository::known(uow.tx(), uow.tenant(), &[tag])
        .await?
        .is_empty()
    {
        return Err(unknown_tag("/tag_id"));
    }
    if before.tags.len() >= MAX_TAGS_PER_CONTACT {
        return Err(ApiError::invalid_field(
            "/tag_id",
            "too_many",
            format!("a contact carries at most {MAX_TAGS_PER_CONTACT} tags"),
        ));
    }
    // A tag deleted since it was found fails the foreign key: still not one the tenant has.
    repository::attach(uow.tx(), uow.tenant(), contact, tag)
        .await
        .map_err(on_constraint(UNKNOWN_TAG, || unknown_tag("/tag_id")))?;
    changed(uow, before).await
}

/// Attaches the tags named `names` to the contact, adding to the vocabulary each name it does not
/// have yet (an import's tags column): the tags it carried stay.
pub async fn attach_named(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    names: &[String],
) -> Result<ContactTags, ApiError> {
    let before = locked_tags(uow, contact).await?;
    let known = repository::named(uow.tx(), uow.tenant(), names).await?;
    let mut wanted: Vec<TagId> = Vec::with_capacity(names.len());
    for name in names {
        let id = match known
            .iter()
            .find(|tag| tag.name.to_lowercase() == name.to_lowercase())
        {
            Some(tag) => tag.id,
            None => {
                let draft = TagDraft {
                    name: Some(name.clone()),
                    ..TagDraft::default()
                };
                create_tag(uow, draft).await?.id
            }
        };
        if !wanted.contains(&id) && !before.tags.iter().any(|t| t.id == id) {
            wanted.push(id);
        }
    }
    if wanted.is_empty() {
        return Ok(before);
    }
    if before.tags.len() + wanted.len() > MAX_TAGS_PER_CONTACT {
        return Err(ApiError::invalid_field(
            "/tags",
            "too_many",
            format!("a contact carries at most {MAX_TAGS_PER_CONTACT} tags"),
        ));
    }
    for tag in wanted {
        repository::attach(uow.tx(), uow.tenant(), contact, tag).await?;
    }
    changed(uow, before).await
}

/// Detaches `tag` from the contact (nothing changes if it does not carry it).
pub async fn detach(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    tag: TagId,
) -> Result<ContactTags, ApiError> {
    let before = locked_tags(uow, contact).await?;
    if !before.tags.iter().any(|t| t.id == tag) {
        return Ok(before);
    }
    repository::detach(uow.tx(), uow.tenant(), contact, tag).await?;
    changed(uow, before).await
}

/// Makes `tags` (known to the tenant, at most [`MAX_TAGS_PER_CONTACT`]) exactly the contact's set.
pub async fn replace(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    tags: &[TagId],
) -> Result<ContactTags, ApiError> {
    let before = locked_tags(uow, contact).await?;
    let known = repository::known(uow.tx(), uow.tenant(), tags).await?;
    if let Some(index) = tags.iter().position(|id| !known.contains(id)) {
        return Err(unknown_tag(&format!("/tag_ids/{index}")));
    }
    repository::replace(uow.tx(), uow.tenant(), contact, tags)
        .await
        .map_err(on_constraint(UNKNOWN_TAG, || unknown_tag("/tag_ids")))?;
    changed(uow, before).await
}

/// The contact's tags, the contact locked against concurrent changes of them; 404 unless it is
/// live.
async fn locked_tags(uow: &UnitOfWork<'_>, contact: ContactId) -> Result<ContactTags, ApiError> {
    if !contacts::is_live(uow.tx(), uow.tenant(), contact, Hold::NoKeyUpdate).await? {
        return Err(ApiError::NotFound);
    }
    Ok(ContactTags {
        contact_id: contact,
        tags: repository::attached(uow.tx(), uow.tenant(), contact).await?,
    })
}

/// The contact's tags now, audited and evented as a change of the contact when they differ from
/// `before`.
async fn changed(uow: &UnitOfWork<'_>, before: ContactTags) -> Result<ContactTags, ApiError> {
    let after = ContactTags {
        contact_id: before.contact_id,
        tags: repository::attached(uow.tx(), uow.tenant(), before.contact_id).await?,
    };
    if after != before {
        uow.record_change(ContactTagsChanged, after.contact_id, Some(&before), &after)
            .await?;
    }
    Ok(after)
}

async fn locked_tag(
    uow: &UnitOfWork<'_>,
    id: TagId,
    expected: Option<&ExpectedVersion>,
) -> Result<Tag, ApiError> {
    let settings = uow.settings().await?;
    let tag = repository::find(uow.tx(), uow.tenant(), id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    expected::check(expected, settings.require_if_match, tag.version)?;
    Ok(tag)
}

fn name_taken() -> ApiError {
    ApiError::conflict(
        "another tag has this name",
        "/name",
        "name_taken",
        "tag names are unique, whatever their case",
    )
}

fn unknown_tag(field: &str) -> ApiError {
    ApiError::invalid_field(field, "not_found", "no tag of this tenant has this id")
}
