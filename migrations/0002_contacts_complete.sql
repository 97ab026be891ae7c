-- The complete contact: company, job, postal address, lifecycle stage, owner and source; the
-- indexes its list filters and sorts walk; and the one controlled way to erase a contact.

alter table contacts
    add column company text,
    add column job_title text,
    add column address jsonb,
    add column lifecycle_stage text,
    add column owner_id text,
    add column source text,
    -- False while display_name is derived from the names/email/phone, so that it follows them.
    add column display_name_explicit boolean not null default false,
    add constraint contacts_lifecycle_stage_check check (lifecycle_stage in (
        'subscriber', 'lead', 'marketing_qualified_lead', 'sales_qualified_lead',
        'opportunity', 'customer', 'evangelist', 'other'));

-- Keyset sorts: (key, id) in either direction, every one led by the tenant.
create index contacts_created on contacts (tenant_id, created_at, id);
create index contacts_updated on contacts (tenant_id, updated_at, id);
create index contacts_last_name on contacts (tenant_id, (lower(coalesce(last_name, ''))), id);
create index contacts_owner on contacts (tenant_id, owner_id, id) where owner_id is not null;
create index contacts_company on contacts (tenant_id, (lower(company)), id) where company is not null;
create index contacts_lifecycle on contacts (tenant_id, lifecycle_stage, id) where lifecycle_stage is not null;
create index contact_emails_key on contact_emails (tenant_id, address_key);

-- Erasure (GDPR): removes the contact and scrubs its personal data from audit diffs, outbox events
-- and stored idempotent responses. The audit log is append-only for crm_app; this function, owned by
-- the schema owner, is the only way around that, and it only ever touches one tenant's one contact.
create function erase_contact(p_tenant uuid, p_contact uuid) returns boolean
    language plpgsql security definer set search_path = public
    as $$
declare
    erased boolean;
begin
    if p_tenant is distinct from app_tenant_id() then
        raise exception 'erase_contact: tenant mismatch' using errcode = '42501';
    end if;
    delete from contacts where tenant_id = p_tenant and id = p_contact;
    erased := found;
    if erased then
        update audit_log
           set changes = (select coalesce(jsonb_agg(jsonb_build_object(
                              'field', c->>'field', 'old', null, 'new', null, 'erased', true)), '[]'::jsonb)
                          from jsonb_array_elements(changes) c)
         where tenant_id = p_tenant and entity_type = 'contact' and entity_id = p_contact;
        update outbox_events
           set payload = jsonb_build_object('id', p_contact, 'erased', true)
         where tenant_id = p_tenant and entity_id = p_contact;
        delete from idempotency_keys
         where tenant_id = p_tenant and convert_from(response_body, 'UTF8') like '%' || p_contact::text || '%';
    end if;
    return erased;
end
$$;
revoke all on function erase_contact(uuid, uuid) from public;
grant execute on function erase_contact(uuid, uuid) to crm_app;
