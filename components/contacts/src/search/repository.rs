//! A search's statements: one keyset page, and its optional total.
//!
//! With `q`, the contact's search document (`contact_search`, migration 0026) joins in and each
//! of `q`'s words must match it. Sorted by relevance, the whole query is `$2` (the prefix tsquery)
//! and `$3` (the words), which the relevance expression names in the sort and its cursor.

use super::conditions::{self, custom_sort, ListMembership};
use crate::repository::{contact_from_row, PAGE_OF_FOUND};
use crm_domain::contact::search::{
    Node, Search, SortBy, SortKind, EXACT_COUNT_LIMIT, WHOLE_WORD_CHARS,
};
use crm_domain::contact::Contact;
use crm_domain::TenantId;
use crm_platform::store::db::{DbError, Keyset, SqlBuilder, Tx};
use serde::Serialize;

/// A search reads the tenant's rows through the views of migration 0026, which filter to the
/// transaction's tenant without row-level security's barrier, so that its conditions can be
/// index conditions (under the barrier, no condition that is not leakproof can).
const CONTACTS: &str = "tenant_contacts c";
const DOCUMENTS: &str = "tenant_contact_search s";
/// One word of `q`, matched as a prefix in the document, or (a long enough word) approximately in
/// the names. `search_tsquery` and `search_folded` (migration 0028) are immutable, so each is
/// computed once, while the statement is planned, and the plan is chosen knowing how common the
/// word is.
const MATCHES_WORD: &str = " and s.document @@ search_tsquery(?)";
/// A fuzzy word whose absence was not checked: as typed, or approximately (`{similar}`).
const MATCHES_WORD_OR_NEARLY: &str =
    " and (s.document @@ search_tsquery(?) or search_folded(?) {similar} s.names)";
/// A word no document holds as typed ([`narrow_fuzzy`] checked): only its similarity can match,
/// and without an `or` the planner can intersect its trigram candidates with the other words'.
const MATCHES_NEARLY: &str = " and search_folded(?) {similar} s.names";

/// The trigram operator a fuzzy word is compared with: word similarity (`<%`, threshold 0.5,
/// migration 0026), or for a long word ([`WHOLE_WORD_CHARS`]) strict word similarity against whole
/// words (`<<%`, threshold 0.55, migration 0028).
fn similar(word: &str) -> &'static str {
    if word.chars().count() >= WHOLE_WORD_CHARS {
        "<<%"
    } else {
        "<%"
    }
}

/// Relevance: a contact whose document holds every word ranks above one found only by
/// similarity, by its full-text rank (names weigh most, notes least); one found by similarity
/// alone, by how close its names and emails are to `q` (a trigram comparison costs twenty times a
/// rank, so it is made only where the text did not match). Rounded, so that its text in a cursor
/// reads back as the same number.
const RELEVANCE: &str = "round((case when s.document @@ search_tsquery($2)
    then 1 + ts_rank(s.document, search_tsquery($2))
    else word_similarity(search_folded($3), s.names) end)::numeric, 6)";

/// Which of `q`'s fuzzy words some live contact's document holds as they are (whole, or as the
/// start of a longer word): those are then matched exactly only. One statement, however many
/// words; `contact_search_holds` (migration 0028) asks each through the index when it is rare.
pub async fn narrow_fuzzy(tx: &Tx, search: &mut Search) -> Result<(), DbError> {
    let Some(q) = search.q.as_mut() else {
        return Ok(());
    };
    let candidates: Vec<(usize, String)> = q
        .fuzzy_words()
        .map(|(index, word)| (index, word.to_owned()))
        .collect();
    if !candidates.is_empty() {
        let mut query = SqlBuilder::new("select true", Vec::new());
        for (position, (_, word)) in candidates.iter().enumerate() {
            query.push(
                &format!(", contact_search_holds(?) as w{position}"),
                [word.as_str().into()],
            );
        }
        let row = tx.query_one(&query.sql, &query.params).await?;
        for (position, (index, _)) in candidates.iter().enumerate() {
            if row.get::<bool>(format!("w{position}").as_str())? {
                q.found_exactly(*index);
            }
        }
    }
    q.checked();
    Ok(())
}

/// How many contacts a search matches: exact below [`EXACT_COUNT_LIMIT`], the planner's estimate
/// at and above it.
#[derive(Debug, Serialize)]
pub struct Total {
    pub value: i64,
    pub exact: bool,
}

/// Where a search's rows come from: the contacts (with their search documents when it has a `q`),
/// or, for a `q` alone whose order is relevance, the live contacts' search documents only.
struct Source {
    /// `from ... where <tenant>`, with the condition that the row is live unless deleted ones are
    /// asked for.
    from: String,
    /// The SQL of a row's contact id.
    id: &'static str,
}

impl Source {
    fn of(search: &Search, sorted_by_contact: bool) -> Self {
        let documents_alone = search.q.is_some()
            && search.filter.is_none()
            && !search.include_deleted
            && !sorted_by_contact;
        if documents_alone {
            return Self {
                from: format!("{DOCUMENTS} where s.tenant_id = $1 and s.live"),
                id: "s.contact_id",
            };
        }
        let join = match (&search.q, search.include_deleted) {
            (None, _) => String::new(),
            (Some(_), true) => {
                format!(" join {DOCUMENTS} on s.tenant_id = c.tenant_id and s.contact_id = c.id")
            }
            (Some(_), false) => format!(
                " join {DOCUMENTS} on s.tenant_id = c.tenant_id and s.contact_id = c.id and s.live"
            ),
        };
        let live = if search.include_deleted {
            ""
        } else {
            " and c.deleted_at is null"
        };
        Self {
            from: format!("{CONTACTS}{join} where c.tenant_id = $1{live}"),
            id: "c.id",
        }
    }
}

/// The parameters every statement of a search starts with: the tenant, and when `ranked`, the
/// relevance's `$2` and `$3`.
fn leading_params(tenant: TenantId, search: &Search, ranked: bool) -> SqlBuilder {
    let mut params = vec![tenant.into()];
    if let (Some(q), true) = (&search.q, ranked) {
        params.extend([q.tsquery.as_str().into(), q.text.as_str().into()]);
    }
    SqlBuilder::new("", params)
}

/// Appends `select <columns> from <source>` with `q`'s words and `filter` (no order, no limit).
fn push_matching(
    query: &mut SqlBuilder,
    columns: &str,
    source: &Source,
    search: &Search,
    filter: Option<&Node>,
    lists: &ListMembership,
) {
    query.raw(&format!("select {columns} from {}", source.from));
    if let Some(q) = &search.q {
        for (word, fuzzy) in q.words.iter().zip(&q.fuzzy) {
            let nearly = |clause: &str| clause.replace("{similar}", similar(word));
            match (*fuzzy, q.checked) {
                (false, _) => query.push(MATCHES_WORD, [format!("{word}:*").into()]),
                (true, true) => query.push(&nearly(MATCHES_NEARLY), [word.as_str().into()]),
                (true, false) => query.push(
                    &nearly(MATCHES_WORD_OR_NEARLY),
                    [format!("{word}:*").into(), word.as_str().into()],
                ),
            };
        }
    }
    if let Some(filter) = filter {
        query.raw(" and ");
        conditions::push(query, filter, lists);
    }
}

/// The branches a search's rows are found by, each read on its own and their rows united: the
/// groups of a top-level `or`, or the whole filter. PostgreSQL plans an `or` whose groups need
/// different indexes (a tag's rows, a custom value's) as one walk over every contact testing each
/// group; one read per group lets each use its own index, and a page needs only a page of each.
fn branches(search: &Search) -> Vec<Option<&Node>> {
    match &search.filter {
        Some(Node::Any(groups)) if groups.len() > 1 && groups.len() <= MAX_UNITED_GROUPS => {
            groups.iter().map(Some).collect()
        }
        filter => vec![filter.as_ref()],
    }
}

/// The most groups of a top-level `or` read each on its own (a longer `or` is read as one).
const MAX_UNITED_GROUPS: usize = 8;

/// Appends the rows of every branch ([`branches`]), each `select <columns> ...` followed by
/// `each_tail` (a page's order and limit, or nothing), united when there are several; returns
/// whether they were.
fn push_found(
    query: &mut SqlBuilder,
    columns: &str,
    source: &Source,
    search: &Search,
    lists: &ListMembership,
    each_tail: impl Fn(&mut SqlBuilder),
) -> bool {
    let branches = branches(search);
    let united = branches.len() > 1;
    for (index, filter) in branches.into_iter().enumerate() {
        if index > 0 {
            query.raw(" union ");
        }
        if united {
            query.raw("(");
        }
        push_matching(query, columns, source, search, filter, lists);
        each_tail(query);
        if united {
            query.raw(")");
        }
    }
    united
}

/// The sort's expression, its text for a cursor, and the placeholder that reads a cursor's text
/// back. A contact without the value sorts as the lowest one.
fn sort_sql(by: &SortBy) -> (String, String, &'static str) {
    const TIME: &str = "?::text::timestamptz";
    const NUMBER: &str = "?::text::numeric";
    const TEXT: &str = "?::text";
    match by {
        SortBy::Relevance => (RELEVANCE.to_owned(), format!("{RELEVANCE}::text"), NUMBER),
        SortBy::Time(column) if column == "last_contacted_at" => (
            "coalesce(c.last_contacted_at, '-infinity'::timestamptz)".to_owned(),
            "coalesce(rfc3339(c.last_contacted_at), '-infinity')".to_owned(),
            TIME,
        ),
        SortBy::Time(column) => (
            format!("c.{}", column_name(column)),
            format!("rfc3339(c.{})", column_name(column)),
            TIME,
        ),
        SortBy::Text(column) => {
            let expression = format!("lower(coalesce(c.{}, ''))", column_name(column));
            (expression.clone(), expression, TEXT)
        }
        SortBy::Custom(key, SortKind::Number) => {
            let expression = custom_sort(key, SortKind::Number);
            (expression.clone(), format!("{expression}::text"), NUMBER)
        }
        SortBy::Custom(key, kind) => {
            let expression = custom_sort(key, *kind);
            (expression.clone(), expression, TEXT)
        }
    }
}

/// A sortable column of the contact by name; the reading allowed only these.
fn column_name(name: &str) -> &'static str {
    crm_domain::contact::search::SORT_FIELDS
        .iter()
        .find(|column| **column == name)
        .copied()
        .unwrap_or("created_at")
}

/// The statement of one page of `search`: up to `search.limit + 1` contacts after its cursor, in
/// its order, each with its sort key as text (for the next cursor).
pub fn page_statement(tenant: TenantId, search: &Search, lists: &ListMembership) -> SqlBuilder {
    let (expression, key, placeholder) = sort_sql(&search.sort.by);
    let ranked = search.sort.by == SortBy::Relevance;
    let source = Source::of(search, !ranked);
    let columns = format!(
        "{} as id, {key} as sort_key, {expression} as sort_value",
        source.id
    );
    let order = Keyset {
        key: Some((&expression, placeholder)),
        id: source.id,
        descending: search.sort.descending,
    };
    let direction = if search.sort.descending {
        "desc"
    } else {
        "asc"
    };
    let limit = search.limit as i64 + 1;
    let mut found = leading_params(tenant, search, ranked);
    let united = push_found(&mut found, &columns, &source, search, lists, |branch| {
        branch.page(
            &order,
            search
                .after
                .as_ref()
                .map(|cursor| vec![cursor.key.as_str().into(), cursor.id.into()]),
            limit,
        );
    });
    if united {
        found.sql = format!(
            "select * from ({}) united order by sort_value {direction}, id {direction} limit {limit}",
            found.sql
        );
    }
    let sql = PAGE_OF_FOUND.replace("{found}", &found.sql).replace(
        "{order}",
        &format!("found.sort_value {direction}, found.id {direction}"),
    );
    SqlBuilder::new(sql, found.params)
}

/// Runs [`page_statement`].
pub async fn page(
    tx: &Tx,
    tenant: TenantId,
    search: &Search,
    lists: &ListMembership,
) -> Result<Vec<(Contact, String)>, DbError> {
    let query = page_statement(tenant, search, lists);
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(|row| Ok((contact_from_row(row)?, row.get::<String>("sort_key")?)))
        .collect()
}

/// How many contacts the search matches, whatever its cursor.
pub async fn total(
    tx: &Tx,
    tenant: TenantId,
    search: &Search,
    lists: &ListMembership,
) -> Result<Total, DbError> {
    let source = Source::of(search, false);
    let mut query = leading_params(tenant, search, false);
    push_found(
        &mut query,
        &format!("{} as id", source.id),
        &source,
        search,
        lists,
        |_| {},
    );
    let counted: i64 = tx
        .query_one(
            &format!(
                "select count(*) from ({} limit {EXACT_COUNT_LIMIT}) matched",
                query.sql
            ),
            &query.params,
        )
        .await?
        .get(0)?;
    if counted < EXACT_COUNT_LIMIT {
        return Ok(Total {
            value: counted,
            exact: true,
        });
    }
    // The plan's first line, in text (json plans do not cross every host's driver):
    // `Seq Scan on contacts c  (cost=0.00..1.00 rows=123 width=4)`.
    let plan: String = tx
        .query_one(&format!("explain {}", query.sql), &query.params)
        .await?
        .get(0)?;
    let estimate = plan
        .split("rows=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<i64>().ok())
        .unwrap_or(EXACT_COUNT_LIMIT);
    Ok(Total {
        value: estimate.max(EXACT_COUNT_LIMIT),
        exact: false,
    })
}
