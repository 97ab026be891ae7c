-- Erasure reads what a contact owns from a table instead of naming it: each kind of row that
-- belongs to a contact (its calls, notes, links) is registered once, with the columns that name the
-- contact, and `erase_contact` deletes those rows and scrubs their audit diffs and events. Adding a
-- kind of owned row is one insert here, not a restatement of the whole function (migrations 0003
-- and 0009 each restated it for calls). The table belongs to the schema owner; the application role
-- cannot change it.

create table contact_owned_rows (
    entity_type text primary key,
    table_name text not null,
    contact_columns text[] not null check (cardinality(contact_columns) between 1 and 4)
);
insert into contact_owned_rows (entity_type, table_name, contact_columns) values
    ('call', 'calls', '{contact_id}'),
    ('note', 'contact_notes', '{contact_id}'),
    ('relationship', 'contact_relationships', '{from_contact,to_contact}');
revoke all on contact_owned_rows from public;
-- Like every table: row-level security, here with no policy, so only its owner (the functions it
-- serves run as the owner) reads it.
alter table contact_owned_rows enable row level security;

create or replace function erase_contact(p_tenant uuid, p_contact uuid) returns boolean
    language plpgsql security definer set search_path = public
    as $$
declare
    erased boolean;
    owned record;
    ids uuid[];
    all_ids uuid[] := '{}';
    owned_ids jsonb := '{}'::jsonb;
begin
    if p_tenant is distinct from app_tenant_id() then
        raise exception 'erase_contact: tenant mismatch' using errcode = '42501';
    end if;
    for owned in select entity_type, table_name, contact_columns from contact_owned_rows loop
        execute format(
            'select coalesce(array_agg(id), ''{}'') from %I where tenant_id = $1 and (%s)',
            owned.table_name,
            (select string_agg(format('%I = $2', c), ' or ') from unnest(owned.contact_columns) c))
          into ids using p_tenant, p_contact;
        execute format('delete from %I where tenant_id = $1 and id = any($2)', owned.table_name)
          using p_tenant, ids;
        all_ids := all_ids || ids;
        owned_ids := owned_ids || jsonb_build_object(owned.entity_type, to_jsonb(ids));
    end loop;
    delete from contacts where tenant_id = p_tenant and id = p_contact;
    erased := found;
    if erased then
        update audit_log a
           set changes = (select coalesce(jsonb_agg(jsonb_build_object(
                              'field', c->>'field', 'old', null, 'new', null, 'erased', true)), '[]'::jsonb)
                          from jsonb_array_elements(a.changes) c)
         where a.tenant_id = p_tenant
           and ((a.entity_type = 'contact' and a.entity_id = p_contact)
             or (owned_ids ? a.entity_type
                 and a.entity_id = any(array(select jsonb_array_elements_text(owned_ids -> a.entity_type))::uuid[])));
        update outbox_events
           set payload = jsonb_build_object('id', entity_id, 'erased', true)
         where tenant_id = p_tenant and (entity_id = p_contact or entity_id = any(all_ids));
        update idempotency_keys
           set status = 'completed',
               response_status = 410,
               response_headers = '{"content-type": "application/problem+json"}'::jsonb,
               response_body = convert_to(
                   '{"type":"/problems/erased","title":"Erased","status":410,'
                   || '"detail":"what this request created or changed has been erased"}', 'UTF8')
         where tenant_id = p_tenant
           and (convert_from(response_body, 'UTF8') like '%' || p_contact::text || '%'
             or exists (select 1 from unnest(all_ids) as entity
                        where convert_from(response_body, 'UTF8') like '%' || entity::text || '%'));
    end if;
    return erased;
end
$$;
