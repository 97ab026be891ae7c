-- The search documents of migration 0026 are refreshed from two uuid arrays (tenants, contacts)
-- instead of one jsonb array: jsonb caps an array at 256 MB, so a statement that wrote about five
-- million rows (notes loaded in bulk, a large import) failed in its trigger. An array of uuids
-- holds a row in 16 bytes, and a contact changed by many rows of one statement is refreshed once.

create function refresh_contact_search(p_tenants uuid[], p_contacts uuid[]) returns void
    language sql security definer set search_path = public
    as $$
    insert into contact_search (tenant_id, contact_id, live, document, names)
    select c.tenant_id, c.id, c.deleted_at is null,
           setweight(to_tsvector('simple', unaccent(concat_ws(' ', c.first_name, c.last_name, c.display_name))), 'A')
           || setweight(to_tsvector('simple', unaccent(coalesce(emails.words, ''))), 'B')
           || setweight(to_tsvector('simple', unaccent(concat_ws(' ', c.company, c.job_title))), 'C')
           || setweight(to_tsvector('simple', unaccent(left(coalesce(notes.bodies, ''), 200000))), 'D'),
           lower(unaccent(concat_ws(' ', c.first_name, c.last_name, c.display_name, emails.addresses)))
    from (select distinct tenant_id, contact_id
          from unnest(p_tenants, p_contacts) as x(tenant_id, contact_id)) changed
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
revoke all on function refresh_contact_search(uuid[], uuid[]) from public;

create or replace function contact_search_changed() returns trigger
    language plpgsql security definer set search_path = public
    as $$
declare
    tenants uuid[];
    contacts uuid[];
begin
    execute format('select array_agg(tenant_id), array_agg(contact_id)
                    from (select distinct tenant_id, %I as contact_id from %I) changed',
                   tg_argv[0], case when tg_op = 'DELETE' then 'old_rows' else 'new_rows' end)
        into tenants, contacts;
    if contacts is not null then
        perform refresh_contact_search(tenants, contacts);
    end if;
    return null;
end
$$;

drop function refresh_contact_search(jsonb);
