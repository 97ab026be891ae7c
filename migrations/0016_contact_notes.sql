-- Notes on a contact: a Markdown body kept as written (at most 64 KiB, checked by the application
-- and bounded here), pinned or not, written by an actor (its kind and id, as the audit log names
-- it). A contact's notes are listed pinned first, newest first.

create table contact_notes (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    contact_id uuid not null,
    body text not null check (octet_length(body) between 1 and 65536),
    pinned boolean not null default false,
    author_type text not null,
    author_id text not null,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
create trigger contact_notes_updated_at before update on contact_notes
    for each row execute function set_updated_at();
create index contact_notes_listing
    on contact_notes (tenant_id, contact_id, pinned desc, created_at desc, id desc);

alter table contact_notes enable row level security;
create policy tenant_isolation on contact_notes
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on contact_notes to crm_app;

-- Erasing a contact erases its notes too (a note about a person is their personal data), and
-- scrubs the notes' audit diffs and events as it does the contact's and its calls'. Restated whole
-- from migration 0009, with the notes added.
create or replace function erase_contact(p_tenant uuid, p_contact uuid) returns boolean
    language plpgsql security definer set search_path = public
    as $$
declare
    erased boolean;
    call_ids uuid[];
    note_ids uuid[];
begin
    if p_tenant is distinct from app_tenant_id() then
        raise exception 'erase_contact: tenant mismatch' using errcode = '42501';
    end if;
    select coalesce(array_agg(id), '{}') into call_ids
      from calls where tenant_id = p_tenant and contact_id = p_contact;
    select coalesce(array_agg(id), '{}') into note_ids
      from contact_notes where tenant_id = p_tenant and contact_id = p_contact;
    delete from calls where tenant_id = p_tenant and id = any(call_ids);
    delete from contact_notes where tenant_id = p_tenant and id = any(note_ids);
    delete from contacts where tenant_id = p_tenant and id = p_contact;
    erased := found;
    if erased then
        update audit_log
           set changes = (select coalesce(jsonb_agg(jsonb_build_object(
                              'field', c->>'field', 'old', null, 'new', null, 'erased', true)), '[]'::jsonb)
                          from jsonb_array_elements(changes) c)
         where tenant_id = p_tenant
           and ((entity_type = 'contact' and entity_id = p_contact)
             or (entity_type = 'call' and entity_id = any(call_ids))
             or (entity_type = 'note' and entity_id = any(note_ids)));
        update outbox_events
           set payload = jsonb_build_object('id', entity_id, 'erased', true)
         where tenant_id = p_tenant
           and (entity_id = p_contact or entity_id = any(call_ids) or entity_id = any(note_ids));
        update idempotency_keys
           set status = 'completed',
               response_status = 410,
               response_headers = '{"content-type": "application/problem+json"}'::jsonb,
               response_body = convert_to(
                   '{"type":"/problems/erased","title":"Erased","status":410,'
                   || '"detail":"what this request created or changed has been erased"}', 'UTF8')
         where tenant_id = p_tenant
           and (convert_from(response_body, 'UTF8') like '%' || p_contact::text || '%'
             or exists (select 1 from unnest(call_ids || note_ids) as entity
                        where convert_from(response_body, 'UTF8') like '%' || entity::text || '%'));
    end if;
    return erased;
end
$$;
