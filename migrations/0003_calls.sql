-- Calls: logged phone calls, linked to a contact when one is known, and the contact's
-- last_contacted_at that they advance.

alter table contacts add column last_contacted_at timestamptz;

create table calls (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    contact_id uuid,
    direction text not null check (direction in ('inbound', 'outbound')),
    from_raw text not null,
    from_e164 text not null,
    from_region text not null,
    to_raw text not null,
    to_e164 text not null,
    to_region text not null,
    started_at timestamptz not null,
    duration_seconds integer not null check (duration_seconds between 0 and 604800),
    status text not null check (status in ('completed', 'missed', 'busy', 'failed', 'no_answer', 'voicemail')),
    outcome text,
    notes text,
    recording_url text,
    agent_id text,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    -- Erasing or deleting a contact keeps its calls, unlinked (PostgreSQL 15: SET NULL on one column).
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete set null (contact_id)
);
create trigger calls_updated_at before update on calls
    for each row execute function set_updated_at();
create index calls_started on calls (tenant_id, started_at, id);
create index calls_contact on calls (tenant_id, contact_id, started_at, id) where contact_id is not null;
create index calls_agent on calls (tenant_id, agent_id, started_at, id) where agent_id is not null;

alter table calls enable row level security;
create policy tenant_isolation on calls
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on calls to crm_app;

-- Erasing a contact now also erases its calls: their numbers are the contact's personal data.
-- The calls' audit diffs and events are scrubbed like the contact's own.
create or replace function erase_contact(p_tenant uuid, p_contact uuid) returns boolean
    language plpgsql security definer set search_path = public
    as $$
declare
    erased boolean;
    call_ids uuid[];
begin
    if p_tenant is distinct from app_tenant_id() then
        raise exception 'erase_contact: tenant mismatch' using errcode = '42501';
    end if;
    select coalesce(array_agg(id), '{}') into call_ids
      from calls where tenant_id = p_tenant and contact_id = p_contact;
    delete from calls where tenant_id = p_tenant and id = any(call_ids);
    delete from contacts where tenant_id = p_tenant and id = p_contact;
    erased := found;
    if erased then
        update audit_log
           set changes = (select coalesce(jsonb_agg(jsonb_build_object(
                              'field', c->>'field', 'old', null, 'new', null, 'erased', true)), '[]'::jsonb)
                          from jsonb_array_elements(changes) c)
         where tenant_id = p_tenant
           and ((entity_type = 'contact' and entity_id = p_contact)
             or (entity_type = 'call' and entity_id = any(call_ids)));
        update outbox_events
           set payload = jsonb_build_object('id', entity_id, 'erased', true)
         where tenant_id = p_tenant and (entity_id = p_contact or entity_id = any(call_ids));
        delete from idempotency_keys
         where tenant_id = p_tenant
           and (convert_from(response_body, 'UTF8') like '%' || p_contact::text || '%'
             or exists (select 1 from unnest(call_ids) as call_id
                        where convert_from(response_body, 'UTF8') like '%' || call_id::text || '%'));
    end if;
    return erased;
end
$$;
