-- Custom field values live in the contact's `custom` object, by key, each checked against its
-- definition (migration 0023) on every write. Adding a column with a constant default rewrites
-- nothing. `contact_by_id` returns it too: its result type changes, so it is dropped and created
-- again (the same function as migration 0015's, plus `custom`).

alter table contacts add column custom jsonb not null default '{}'::jsonb
    constraint contacts_custom_is_an_object check (jsonb_typeof(custom) = 'object');

drop function contact_by_id(uuid, uuid);
create function contact_by_id(p_tenant uuid, p_id uuid)
    returns table (
        id uuid, first_name text, last_name text, display_name text, version bigint,
        created_at text, updated_at text, deleted_at text, emails jsonb, phones jsonb,
        company text, job_title text, address jsonb, lifecycle_stage text, owner_id text,
        source text, display_name_explicit boolean, last_contacted_at text, custom jsonb)
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
           c.display_name_explicit, rfc3339(c.last_contacted_at), c.custom
    from contacts c
    where c.tenant_id = p_tenant and c.id = p_id;
end
$$;
revoke all on function contact_by_id(uuid, uuid) from public;
grant execute on function contact_by_id(uuid, uuid) to crm_app;
