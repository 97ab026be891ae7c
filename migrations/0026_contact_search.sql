-- Advanced search (POST /api/v1/contacts/search): what each of its shapes reads through an index.
--
-- * `contact_search` holds one row per contact: a weighted full-text document of its names (A),
--   emails (B: each whole, the words of its local part, its domain), company and job title (C)
--   and notes (D), and `names`, its names and emails
--   lower-cased and unaccented, for typo-tolerant trigram matching. Statement-level triggers on
--   contacts, their emails and their notes keep it in step within the writing transaction, so
--   every write path (HTTP, import, merge, erasure) keeps it true without knowing it exists.
-- * GIN indexes over the document and the trigram names, partial on live contacts.
-- * A GIN index over custom field values (`custom @> '{"key": value}'`) for equality on any custom
--   field of any tenant; a field marked `indexed` gets its own btree for ranges, prefixes and sorts,
--   built concurrently by `crm search-indexes` (see docs/adr/0013-contact-search.md).
-- * Prefix indexes (`text_pattern_ops`, so that `like 'abc%'` uses them under any collation) on the
--   lower-cased names of live contacts.
-- * `tenant_contacts` and `tenant_contact_search`: the two tables as the tenant of the transaction
--   sees them, for the search to read. Row-level security makes a policy a security barrier: no
--   condition whose operator is not leakproof (`lower`, `like`, `@>`, `@@`, trigram `<%`: none of
--   them is) may run before it, so none of them can be an index condition, and every index above
--   would go unused. These views apply the policy's own predicate (`tenant_id = app_tenant_id()`)
--   without the barrier: they belong to the schema owner, which the policies do not bind, and
--   filter to the transaction's tenant themselves. What reads through them is the application's
--   own statements, every value a parameter; a tenant never writes SQL, so the barrier guards
--   nothing here that the predicate does not.

create extension if not exists pg_trgm;
create extension if not exists unaccent;

-- `unaccent` is stable (its dictionary could change); the document is computed by the triggers,
-- never by an index expression, so that is enough.
create table contact_search (
    tenant_id uuid not null,
    contact_id uuid not null,
    live boolean not null,
    document tsvector not null,
    names text not null,
    primary key (tenant_id, contact_id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
alter table contact_search enable row level security;
create policy tenant_isolation on contact_search
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select on contact_search to crm_app;

create index contact_search_document on contact_search using gin (document) where live;
create index contact_search_names on contact_search using gin (names gin_trgm_ops) where live;

-- Refreshes the search rows of the given contacts from what they hold now. Owned by the schema
-- owner and run as it (the application only reads `contact_search`), with the tenant of each row
-- taken from the rows that changed, never from a parameter.
create function refresh_contact_search(p_contacts jsonb) returns void
    language sql security definer set search_path = public
    as $$
    insert into contact_search (tenant_id, contact_id, live, document, names)
    select c.tenant_id, c.id, c.deleted_at is null,
           setweight(to_tsvector('simple', unaccent(concat_ws(' ', c.first_name, c.last_name, c.display_name))), 'A')
           || setweight(to_tsvector('simple', unaccent(coalesce(emails.words, ''))), 'B')
           || setweight(to_tsvector('simple', unaccent(concat_ws(' ', c.company, c.job_title))), 'C')
           || setweight(to_tsvector('simple', unaccent(left(coalesce(notes.bodies, ''), 200000))), 'D'),
           lower(unaccent(concat_ws(' ', c.first_name, c.last_name, c.display_name, emails.addresses)))
    from (select distinct (x ->> 0)::uuid as tenant_id, (x ->> 1)::uuid as contact_id
          from jsonb_array_elements(p_contacts) x) changed
    join contacts c on c.tenant_id = changed.tenant_id and c.id = changed.contact_id
    left join lateral (select string_agg(e.address, ' ' order by e.position) as addresses,
                              -- each address whole, the words of its local part, and its domain
                              string_agg(concat_ws(' ', e.address,
                                  regexp_replace(split_part(e.address, '@', 1), '[^[:alnum:]]+', ' ', 'g'),
                                  split_part(e.address, '@', 2)), ' ' order by e.position) as words
                       from contact_emails e
                       where e.tenant_id = c.tenant_id and e.contact_id = c.id) emails on true
    left join lateral (select string_agg(n.body, ' ' order by n.created_at) as bodies
                       from contact_notes n
                       where n.tenant_id = c.tenant_id and n.contact_id = c.id) notes on true
    on conflict (tenant_id, contact_id) do update
        set live = excluded.live, document = excluded.document, names = excluded.names
    $$;
revoke all on function refresh_contact_search(jsonb) from public;

-- One trigger function for every table whose rows say something about a contact: `contact_column`
-- (trigger argument) names the column holding the contact's id. Transition tables make it one
-- refresh per statement, however many rows the statement touched.
create function contact_search_changed() returns trigger
    language plpgsql security definer set search_path = public
    as $$
declare
    changed jsonb;
begin
    if tg_op = 'DELETE' then
        execute format('select jsonb_agg(jsonb_build_array(tenant_id, %I)) from old_rows', tg_argv[0]) into changed;
    else
        execute format('select jsonb_agg(jsonb_build_array(tenant_id, %I)) from new_rows', tg_argv[0]) into changed;
    end if;
    if changed is not null then
        perform refresh_contact_search(changed);
    end if;
    return null;
end
$$;
revoke all on function contact_search_changed() from public;

create trigger contact_search_contacts_inserted after insert on contacts
    referencing new table as new_rows for each statement execute function contact_search_changed('id');
create trigger contact_search_contacts_updated after update on contacts
    referencing new table as new_rows for each statement execute function contact_search_changed('id');
create trigger contact_search_emails_inserted after insert on contact_emails
    referencing new table as new_rows for each statement execute function contact_search_changed('contact_id');
create trigger contact_search_emails_updated after update on contact_emails
    referencing new table as new_rows for each statement execute function contact_search_changed('contact_id');
create trigger contact_search_emails_deleted after delete on contact_emails
    referencing old table as old_rows for each statement execute function contact_search_changed('contact_id');
create trigger contact_search_notes_inserted after insert on contact_notes
    referencing new table as new_rows for each statement execute function contact_search_changed('contact_id');
create trigger contact_search_notes_updated after update on contact_notes
    referencing new table as new_rows for each statement execute function contact_search_changed('contact_id');
create trigger contact_search_notes_deleted after delete on contact_notes
    referencing old table as old_rows for each statement execute function contact_search_changed('contact_id');

-- The contacts there are now.
select refresh_contact_search(coalesce(jsonb_agg(jsonb_build_array(tenant_id, id)), '[]'::jsonb))
from contacts;

create view tenant_contacts as
    select * from contacts where tenant_id = app_tenant_id();
create view tenant_contact_search as
    select * from contact_search where tenant_id = app_tenant_id();
grant select on tenant_contacts, tenant_contact_search to crm_app;

-- Equality on any custom field: `custom @> '{"tier": "gold"}'`.
create index contacts_custom_values on contacts using gin (custom jsonb_path_ops) where deleted_at is null;

-- Name prefixes of live contacts.
create index contacts_live_first_name_prefix on contacts (tenant_id, lower(first_name) text_pattern_ops)
    where deleted_at is null;
create index contacts_live_last_name_prefix on contacts (tenant_id, lower(last_name) text_pattern_ops)
    where deleted_at is null;
create index contacts_live_company_prefix on contacts (tenant_id, lower(company) text_pattern_ops)
    where deleted_at is null;

-- Typo tolerance: `q` matches a name or email whose trigram word similarity to it reaches 0.5
-- (`<%`; the default 0.6 misses two typos in an email address). Set where the migrating role
-- owns the database, as migration 0025 does for JIT.
do $$
begin
    execute format('alter database %I set pg_trgm.word_similarity_threshold = 0.5', current_database());
exception when insufficient_privilege then
    raise notice 'set pg_trgm.word_similarity_threshold = 0.5 for this database (alter database % set ...)',
        current_database();
end
$$;
