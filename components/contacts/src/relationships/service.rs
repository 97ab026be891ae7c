//! Link changes, whoever makes them: audited and evented as `relationship.*` in the unit of work.
//! Both contacts are live contacts of the unit's tenant; a link to itself, a second identical link
//! (a symmetric one in either direction), or more than
//! [`MAX_PER_CONTACT`](crm_domain::relationship::MAX_PER_CONTACT) links on a contact are refused.
//! Nothing here knows HTTP.

use super::repository::{self, LinkOfContact, LINKED_ALREADY, TYPE_TAKEN};
use crm_domain::event::RelationshipAction;
use crm_domain::relationship::{
    Link, NewRelationshipType, RelatedContact, Relationship, RelationshipDraft, RelationshipType,
    RelationshipTypeDraft, BUILT_INS, MAX_PER_CONTACT,
};
use crm_domain::ContactId;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::{on_constraint, Tx};
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;

/// The built-in link types, then the tenant's.
pub async fn types(
    tx: &Tx,
    tenant: crm_domain::TenantId,
) -> Result<Vec<RelationshipType>, ApiError> {
    let mut all: Vec<RelationshipType> = BUILT_INS
        .iter()
        .filter_map(|b| RelationshipType::built_in(b.key))
        .collect();
    all.extend(repository::types(tx, tenant).await?);
    Ok(all)
}

/// Adds a link type of the tenant's own.
pub async fn create_type(
    uow: &UnitOfWork<'_>,
    draft: RelationshipTypeDraft,
) -> Result<RelationshipType, ApiError> {
    let kind = NewRelationshipType::parse(draft)?;
    repository::insert_type(uow.tx(), uow.tenant(), &kind)
        .await
        .map_err(on_constraint(TYPE_TAKEN, || {
            ApiError::conflict(
                "the tenant has a link type with these names",
                "/forward_name",
                "type_exists",
                "use the existing type",
            )
        }))
}

/// Links `contact` to the draft's other contact with the draft's type; `contact` is the link's
/// first contact (for `manager`, the manager).
pub async fn create(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    draft: RelationshipDraft,
) -> Result<Relationship, ApiError> {
    let (tx, tenant) = (uow.tx(), uow.tenant());
    let kind = resolve_type(tx, tenant, draft.kind.trim()).await?;
    let other = ContactId::parse(draft.contact_id.trim()).ok_or_else(|| {
        ApiError::invalid_field("/contact_id", "invalid_id", "must be a contact id (a UUID)")
    })?;
    if other == contact {
        return Err(ApiError::invalid_field(
            "/contact_id",
            "self_link",
            "a contact cannot be linked to itself",
        ));
    }
    if !contacts::is_live(tx, tenant, contact, Hold::NoKeyUpdate).await? {
        return Err(ApiError::NotFound);
    }
    let Some(other_name) = repository::live_name(tx, tenant, other).await? else {
        return Err(ApiError::invalid_field(
            "/contact_id",
            "not_found",
            "no live contact of this tenant has this id",
        ));
    };
    if repository::count(tx, tenant, contact).await? >= MAX_PER_CONTACT {
        return Err(ApiError::invalid_field(
            "/contact_id",
            "too_many",
            format!("a contact has at most {MAX_PER_CONTACT} relationships"),
        ));
    }
    // A symmetric link is stored once, its contacts in id order, so that A-B and B-A meet.
    let (from, to) = if kind.symmetric() && other < contact {
        (other, contact)
    } else {
        (contact, other)
    };
    let link = repository::insert(tx, tenant, from, to, &kind.id)
        .await
        .map_err(on_constraint(LINKED_ALREADY, || {
            ApiError::conflict(
                "these contacts are linked this way already",
                "/contact_id",
                "linked_already",
                "a link between two contacts exists once per type",
            )
        }))?;
    uow.record_change(RelationshipAction::Created, link.id, None, &link)
        .await?;
    // The link as this contact sees it: its first contact unless a symmetric link was stored the
    // other way round, when both names are the same.
    Ok(Relationship {
        id: link.id,
        name: kind.forward_name,
        kind: link.kind,
        contact: RelatedContact {
            id: other,
            display_name: other_name,
        },
        created_at: link.created_at,
    })
}

/// Removes a link the contact is on (either side).
pub async fn delete(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    id: crm_domain::RelationshipId,
) -> Result<(), ApiError> {
    let link: Link = repository::find_for_delete(uow.tx(), uow.tenant(), id, contact)
        .await?
        .ok_or(ApiError::NotFound)?;
    repository::delete(uow.tx(), uow.tenant(), id).await?;
    uow.record_removal(RelationshipAction::Deleted, id, &link)
        .await
}

/// The contact's links as it sees them: each with what this contact is to the other.
pub async fn of_contact(
    tx: &Tx,
    tenant: crm_domain::TenantId,
    contact: ContactId,
) -> Result<Vec<Relationship>, ApiError> {
    let links = repository::of_contact(tx, tenant, contact).await?;
    Ok(links
        .into_iter()
        .map(|link: LinkOfContact| {
            let (forward, reverse) = link.names.unwrap_or_else(|| {
                RelationshipType::built_in(&link.kind)
                    .map(|b| (b.forward_name, b.reverse_name))
                    .unwrap_or_else(|| (link.kind.clone(), link.kind.clone()))
            });
            Relationship {
                id: link.id,
                name: if link.outgoing { forward } else { reverse },
                kind: link.kind,
                contact: link.other,
                created_at: link.created_at,
            }
        })
        .collect())
}

async fn resolve_type(
    tx: &Tx,
    tenant: crm_domain::TenantId,
    key: &str,
) -> Result<RelationshipType, ApiError> {
    if let Some(built_in) = RelationshipType::built_in(key) {
        return Ok(built_in);
    }
    repository::tenant_type(tx, tenant, key)
        .await?
        .ok_or_else(|| {
            ApiError::invalid_field(
                "/type",
                "unknown_type",
                format!(
                    "must be a built-in type ({}) or the id of one of the tenant's",
                    BUILT_INS
                        .iter()
                        .map(|b| b.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}
