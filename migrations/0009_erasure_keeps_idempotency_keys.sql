-- Erasure keeps the Idempotency-Keys of the requests that created or changed the erased contact
-- and its calls, with their stored responses replaced by a `410 Gone` problem that carries no
-- personal data. Before, erasure deleted those keys, so a client retrying the create with its key
-- recreated the contact it had asked to erase.
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
        update idempotency_keys
           set status = 'completed',
               response_status = 410,
               response_headers = '{"content-type": "application/problem+json"}'::jsonb,
               response_body = convert_to(
                   '{"type":"/problems/erased","title":"Erased","status":410,'
                   || '"detail":"what this request created or changed has been erased"}', 'UTF8')
         where tenant_id = p_tenant
           and (convert_from(response_body, 'UTF8') like '%' || p_contact::text || '%'
             or exists (select 1 from unnest(call_ids) as call_id
                        where convert_from(response_body, 'UTF8') like '%' || call_id::text || '%'));
    end if;
    return erased;
end
$$;
