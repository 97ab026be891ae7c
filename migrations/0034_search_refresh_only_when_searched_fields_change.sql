-- A contact's search document (migrations 0026, 0027, 0030) is written again only when what it is
-- made of changed. Until now every update of a contact or a note noted the contact for the
-- commit-time refresh, which recomputed its document and wrote it back even when equal: an upsert
-- or an import that set a lifecycle stage, an owner, a custom field or a note's `pinned` paid for a
-- new document row and its GIN entries (a third of a batch upsert's database time), for nothing.
--
-- * Updates of contacts and notes note a contact only when a column the document reads changed
--   (`contact_search_fields_changed`, comparing the statement's old and new rows); a note moved to
--   another contact (a merge, its undo) notes both.
-- * The refresh leaves a document row alone when what it computes is what is there.

-- Trigger arguments: the column holding the contact's id, the row's key column, then the columns
-- the search document reads. A row whose contact column changed (a note a merge moved) notes both
-- contacts, the one it left and the one it joined.
create function contact_search_fields_changed() returns trigger
    language plpgsql security definer set search_path = public
    as $$
declare
    searched text := (select string_agg(format('o.%1$I is distinct from n.%1$I', column_name), ' or ')
                      from unnest(tg_argv[0:0] || tg_argv[2:]) as column_name);
begin
    perform set_config('crm.contact_search_flushed', 'no', true);
    execute format('insert into contact_search_pending (tenant_id, contact_id)
                    select distinct touched.tenant_id, touched.contact_id
                    from new_rows n join old_rows o on o.tenant_id = n.tenant_id and o.%2$I = n.%2$I
                    cross join lateral (values (n.tenant_id, n.%1$I), (o.tenant_id, o.%1$I))
                        as touched (tenant_id, contact_id)
                    where (%3$s)
                      and not exists (select 1 from contact_search_pending p
                                      where p.transaction_id = pg_current_xact_id()
                                        and p.tenant_id = touched.tenant_id
                                        and p.contact_id = touched.contact_id)',
                   tg_argv[0], tg_argv[1], searched);
    return null;
end
$$;
revoke all on function contact_search_fields_changed() from public;

drop trigger contact_search_contacts_updated on contacts;
create trigger contact_search_contacts_updated after update on contacts
    referencing old table as old_rows new table as new_rows for each statement
    execute function contact_search_fields_changed('id', 'id', 'first_name', 'last_name',
                                                   'display_name', 'company', 'job_title',
                                                   'deleted_at');
drop trigger contact_search_notes_updated on contact_notes;
create trigger contact_search_notes_updated after update on contact_notes
    referencing old table as old_rows new table as new_rows for each statement
    execute function contact_search_fields_changed('contact_id', 'id', 'body', 'created_at');

create or replace function refresh_contact_search(p_tenants uuid[], p_contacts uuid[]) returns void
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
        where (contact_search.live, contact_search.document, contact_search.names)
              is distinct from (excluded.live, excluded.document, excluded.names)
    $$;
