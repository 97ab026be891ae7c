//! The btree index of a custom field marked `indexed`: `(tenant_id, <its sort expression>, id)`
//! over live contacts, which serves sorting by the field and ranges on it (equality on any custom
//! field is served by the GIN index over every value, migration 0026). Indexes are shared by every
//! tenant whose field has the same key and sort kind; `crm search-indexes` builds and drops them
//! concurrently, as the schema owner (the application role owns no table and cannot).

use super::conditions::custom_sort;
use crm_domain::contact::search::SortKind;
use crm_domain::custom_field::FieldType;

/// Every custom field index's name starts with this.
pub const PREFIX: &str = "contacts_cf_";

/// One custom field index: its name, the statement that builds it without blocking writes, and
/// the statement that gives its expression statistics of its own.
///
/// PostgreSQL ignores the statistics of a partial index's expressions ("they probably don't
/// reflect whole-relation statistics"), so without statistics on the expression itself a range
/// such as `score >= 990` is estimated at the default third of the contacts, not the 1 % it may
/// be, and a plan walks every contact in sort order expecting to stop early. The statistics object
/// shares the index's name (statistics objects have a namespace of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldIndex {
    pub name: String,
    pub create: String,
    pub statistics: String,
}

/// The index a field of `key` and type `kind` has when marked `indexed`; `None` for types that do
/// not sort (long text, multi-select).
pub fn custom_field_index(key: &str, kind: FieldType) -> Option<CustomFieldIndex> {
    let sort = SortKind::of(kind)?;
    let tag = match sort {
        SortKind::Number => "num",
        SortKind::Text => "txt",
        SortKind::Boolean => "bool",
    };
    // PostgreSQL names are at most 63 bytes: a long key is shortened and made unique by its hash.
    let mut name = format!("{PREFIX}{tag}_{key}");
    if name.len() > 63 {
        let digest = format!("{:x}", fnv1a(key));
        name = format!("{PREFIX}{tag}_{}_{digest}", &key[..30]);
    }
    let expression = custom_sort(key, sort).replace("c.custom", "custom");
    let create = format!(
        "create index concurrently if not exists {name} on contacts (tenant_id, ({expression}), id) where deleted_at is null"
    );
    let statistics =
        format!("create statistics if not exists {name} on ({expression}) from contacts");
    Some(CustomFieldIndex {
        name,
        create,
        statistics,
    })
}

/// A stable 64-bit FNV-1a hash of `key` (the same on every build, unlike `DefaultHasher`).
fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgresql_and_stay_apart() {
        let long_a = format!("{}a", "k".repeat(62));
        let long_b = format!("{}b", "k".repeat(62));
        let a = custom_field_index(&long_a, FieldType::Number).unwrap();
        let b = custom_field_index(&long_b, FieldType::Number).unwrap();
        assert!(a.name.len() <= 63 && b.name.len() <= 63);
        assert_ne!(a.name, b.name);
        assert_eq!(
            custom_field_index("seats", FieldType::Decimal)
                .unwrap()
                .name,
            "contacts_cf_num_seats"
        );
        assert!(custom_field_index("bio", FieldType::LongText).is_none());
        assert!(custom_field_index("tags", FieldType::MultiSelect).is_none());
        let tier = custom_field_index("tier", FieldType::SingleSelect).unwrap();
        assert!(
            tier.create
                .contains("lower(coalesce((custom ->> 'tier'), ''))"),
            "{}",
            tier.create
        );
    }
}
