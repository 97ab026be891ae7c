-- Duplicates and merge (docs/adr/0015-duplicates-and-merge.md).
--
-- * `contacts.merged_into`: a merged contact is soft-deleted (its emails no longer count as live,
--   so the survivor can hold them) and names its survivor; reading it answers a problem naming the
--   survivor. `contact_by_id` returns it too: its result type changes, so it is dropped and created
--   again (migration 0024's function plus `merged_into`).
-- * `contact_merges`: one row per merge, with what undoing it needs: the contacts as they were, the
--   survivor as the merge left it, and what moved (calls, notes, consent records, tags, list
--   memberships, links, preferences). Kept until it expires (undo is refused after that) or the
--   survivor or a merged contact is erased (the snapshots are their personal data).
-- * Consent records stay append-only in content; a merge (and its undo) moves them between
--   contacts, so the application may change their `contact_id` and nothing else.
-- * `contact_emails.mailbox_key`: the address as a mailbox receives it (no `+tag`; for Gmail, no
--   dots in the local part), the key duplicates are found on: two live contacts cannot share an
--   address, but `ada+news@example.com` and `ada@example.com` reach one person; and
--   `contacts_duplicate_block`, the names of a company compared for duplicates.

alter table contacts add column merged_into uuid,
    add constraint contacts_merged_into_fkey foreign key (tenant_id, merged_into)
        references contacts (tenant_id, id) on delete set null (merged_into);

create table contact_merges (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    survivor_id uuid not null,
    merged_ids uuid[] not null check (cardinality(merged_ids) between 1 and 10),
    survivor_before jsonb not null,
    survivor_after jsonb not null,
    merged_before jsonb not null check (jsonb_typeof(merged_before) = 'array'),
    moved jsonb not null check (jsonb_typeof(moved) = 'object'),
    actor_type text not null,
    actor text not null,
    merged_at timestamptz not null default now(),
    expires_at timestamptz not null,
    undone_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, survivor_id) references contacts (tenant_id, id) on delete cascade
);
create index contact_merges_by_survivor on contact_merges (tenant_id, survivor_id, merged_at);
create index contact_merges_by_merged on contact_merges using gin (merged_ids);

alter table contact_merges enable row level security;
create policy tenant_isolation on contact_merges
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert on contact_merges to crm_app;
grant update (undone_at) on contact_merges to crm_app;

-- Erasing a merged contact erases the merges that hold its snapshot (the survivor's go with it by
-- the foreign key). Contacts are deleted for good by erasure only.
create function contact_merges_forget() returns trigger
    language plpgsql set search_path = public
    as $$
begin
    delete from contact_merges
     where tenant_id = old.tenant_id and merged_ids @> array[old.id];
    return old;
end
$$;
create trigger contact_merges_forget after delete on contacts
    for each row execute function contact_merges_forget();

grant update (contact_id) on consent_records to crm_app;

alter table contact_emails add column mailbox_key text generated always as (
    case when split_part(address_key, '@', 2) in ('gmail.com', 'googlemail.com')
         then replace(coalesce(nullif(split_part(split_part(address_key, '@', 1), '+', 1), ''),
                               split_part(address_key, '@', 1)), '.', '') || '@gmail.com'
         else coalesce(nullif(split_part(split_part(address_key, '@', 1), '+', 1), ''),
                       split_part(address_key, '@', 1)) || '@' || split_part(address_key, '@', 2)
    end) stored;
create index contact_emails_mailbox on contact_emails (tenant_id, mailbox_key, contact_id) where live;

-- Names compared for duplicates: within a company, among contacts whose last name (else display
-- name) starts with the same two letters (a block: "Lovelace" and "Lovelase", "Smith" and "Smyth"),
-- so that a company of thousands is not compared pair by pair.
create index contacts_duplicate_block on contacts (
    tenant_id, lower(company), left(lower(coalesce(last_name, display_name)), 2), id)
    where company is not null and deleted_at is null;

drop function contact_by_id(uuid, uuid);
create function contact_by_id(p_tenant uuid, p_id uuid)
    returns table (
        id uuid, first_name text, last_name text, display_name text, version bigint,
        created_at text, updated_at text, deleted_at text, emails jsonb, phones jsonb,
        company text, job_title text, address jsonb, lifecycle_stage text, owner_id text,
        source text, display_name_explicit boolean, last_contacted_at text, custom jsonb,
        merged_into uuid)
    language plpgsql security invoker set search_path = public
    as $$
#variable_conflict use_column
begin
    if pg_current_xact_id_if_assigned() is not null
       or transaction_timestamp() < statement_timestamp() - interval '1 second' then
        raise exception 'a transaction was left open on this connection' using errcode = 'CR001';
    end if;
    perform set_config('app.tenant_id', p_tenant::text, false);
    return query
    select c.id, c.first_name, c.last_name, c.display_name, c.version,
           rfc3339(c.created_at), rfc3339(c.updated_at), rfc3339(c.deleted_at),
           coalesce((select jsonb_agg(jsonb_build_object(
                       'address', e.address, 'label', e.label, 'primary', e.is_primary)
                     order by e.position)
                     from contact_emails e
                     where e.tenant_id = c.tenant_id and e.contact_id = c.id), '[]'::jsonb),
           coalesce((select jsonb_agg(jsonb_build_object(
                       'number', p.raw, 'e164', p.e164, 'region', p.region,
                       'national', p.national, 'label', p.label, 'primary', p.is_primary)
                     order by p.position)
                     from contact_phones p
                     where p.tenant_id = c.tenant_id and p.contact_id = c.id), '[]'::jsonb),
           c.company, c.job_title, c.address, c.lifecycle_stage, c.owner_id, c.source,
           c.display_name_explicit, rfc3339(c.last_contacted_at), c.custom, c.merged_into
    from contacts c
    where c.tenant_id = p_tenant and c.id = p_id;
end
$$;
revoke all on function contact_by_id(uuid, uuid) from public;
grant execute on function contact_by_id(uuid, uuid) to crm_app;
