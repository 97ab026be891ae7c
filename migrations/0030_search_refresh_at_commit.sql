-- A contact's search document (migration 0026) is refreshed once per transaction, when it commits,
-- instead of by every statement that touches the contact. Creating a contact wrote its document
-- twice (once for the contact's row, once for its emails), updating one three times (its row and
-- emails deleted, then its emails inserted again), each refresh about a millisecond of planning
-- and GIN upkeep: more than the rest of the write. A batch of a thousand creates paid it two
-- thousand times.
--
-- Now the statement-level triggers only note the contacts a statement touched, once per contact
-- and transaction, in `contact_search_pending`; a deferred constraint trigger on that table runs at
-- commit (still inside the transaction: a document is never behind a committed write) and
-- refreshes every noted contact of the transaction in one statement. Only the schema owner's
-- functions touch the table; the application's role has no grant on it.

create table contact_search_pending (
    transaction_id xid8 not null default pg_current_xact_id(),
    tenant_id uuid not null,
    contact_id uuid not null
);
create index contact_search_pending_contact
    on contact_search_pending (transaction_id, tenant_id, contact_id);
revoke all on contact_search_pending from public;
alter table contact_search_pending enable row level security;

create or replace function contact_search_changed() returns trigger
    language plpgsql security definer set search_path = public
    as $$
begin
    perform set_config('crm.contact_search_flushed', 'no', true);
    execute format('insert into contact_search_pending (tenant_id, contact_id)
                    select distinct changed.tenant_id, changed.%I from %I changed
                    where not exists (select 1 from contact_search_pending p
                                      where p.transaction_id = pg_current_xact_id()
                                        and p.tenant_id = changed.tenant_id
                                        and p.contact_id = changed.%I)',
                   tg_argv[0], case when tg_op = 'DELETE' then 'old_rows' else 'new_rows' end,
                   tg_argv[0]);
    return null;
end
$$;

-- At commit, once per noted contact: the first call refreshes every contact of the transaction and
-- empties its notes; the others return at once, told so by a setting of the transaction (looking
-- for notes already deleted would read every deleted one again: quadratic in a bulk load).
create function contact_search_flush() returns trigger
    language plpgsql security definer set search_path = public
    as $$
declare
    tenants uuid[];
    contacts uuid[];
begin
    if current_setting('crm.contact_search_flushed', true) = 'yes' then
        return null;
    end if;
    perform set_config('crm.contact_search_flushed', 'yes', true);
    with flushed as (
        delete from contact_search_pending where transaction_id = pg_current_xact_id()
        returning tenant_id, contact_id
    )
    select array_agg(tenant_id), array_agg(contact_id) into tenants, contacts from flushed;
    if contacts is not null then
        perform refresh_contact_search(tenants, contacts);
    end if;
    return null;
end
$$;
revoke all on function contact_search_flush() from public;

create constraint trigger contact_search_flush after insert on contact_search_pending
    deferrable initially deferred for each row execute function contact_search_flush();
