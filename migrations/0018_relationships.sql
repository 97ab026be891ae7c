-- Relationships: typed links between two contacts of a tenant. A link's type is a built-in key
-- (`parent`, `spouse`, `manager`, `assistant`, `colleague`: their names live in the application)
-- or the id of one of the tenant's own types. A symmetric type's link is stored once, its contacts
-- in id order. No self-links, no duplicates; deleting either contact for good removes the link.

create table relationship_types (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    forward_name text not null check (char_length(forward_name) between 1 and 50),
    reverse_name text not null check (char_length(reverse_name) between 1 and 50),
    created_at timestamptz not null default now(),
    primary key (tenant_id, id)
);
create unique index relationship_types_names_key
    on relationship_types (tenant_id, lower(forward_name), lower(reverse_name));

create table contact_relationships (
    tenant_id uuid not null,
    id uuid not null,
    from_contact uuid not null,
    to_contact uuid not null,
    type text not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    constraint contact_relationships_not_self check (from_contact <> to_contact),
    foreign key (tenant_id, from_contact) references contacts (tenant_id, id) on delete cascade,
    foreign key (tenant_id, to_contact) references contacts (tenant_id, id) on delete cascade
);
create unique index contact_relationships_once
    on contact_relationships (tenant_id, from_contact, to_contact, type);
create index contact_relationships_to on contact_relationships (tenant_id, to_contact);

alter table relationship_types enable row level security;
create policy tenant_isolation on relationship_types
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table contact_relationships enable row level security;
create policy tenant_isolation on contact_relationships
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on relationship_types, contact_relationships to crm_app;

-- Erasure removes a contact's links with it and scrubs their audit diffs and events. Restated
-- whole from migration 0016, with the links added.
create or replace function erase_contact(p_tenant uuid, p_contact uuid) returns boolean
    language plpgsql security definer set search_path = public
    as $$
declare
    erased boolean;
    call_ids uuid[];
    note_ids uuid[];
    link_ids uuid[];
begin
    if p_tenant is distinct from app_tenant_id() then
        raise exception 'erase_contact: tenant mismatch' using errcode = '42501';
    end if;
    select coalesce(array_agg(id), '{}') into call_ids
      from calls where tenant_id = p_tenant and contact_id = p_contact;
    select coalesce(array_agg(id), '{}') into note_ids
      from contact_notes where tenant_id = p_tenant and contact_id = p_contact;
    select coalesce(array_agg(id), '{}') into link_ids
      from contact_relationships
     where tenant_id = p_tenant and (from_contact = p_contact or to_contact = p_contact);
    delete from calls where tenant_id = p_tenant and id = any(call_ids);
    delete from contact_notes where tenant_id = p_tenant and id = any(note_ids);
    delete from contact_relationships where tenant_id = p_tenant and id = any(link_ids);
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
             or (entity_type = 'note' and entity_id = any(note_ids))
             or (entity_type = 'relationship' and entity_id = any(link_ids)));
        update outbox_events
           set payload = jsonb_build_object('id', entity_id, 'erased', true)
         where tenant_id = p_tenant
           and (entity_id = p_contact or entity_id = any(call_ids) or entity_id = any(note_ids)
                or entity_id = any(link_ids));
        update idempotency_keys
           set status = 'completed',
               response_status = 410,
               response_headers = '{"content-type": "application/problem+json"}'::jsonb,
               response_body = convert_to(
                   '{"type":"/problems/erased","title":"Erased","status":410,'
                   || '"detail":"what this request created or changed has been erased"}', 'UTF8')
         where tenant_id = p_tenant
           and (convert_from(response_body, 'UTF8') like '%' || p_contact::text || '%'
             or exists (select 1 from unnest(call_ids || note_ids || link_ids) as entity
                        where convert_from(response_body, 'UTF8') like '%' || entity::text || '%'));
    end if;
    return erased;
end
$$;
