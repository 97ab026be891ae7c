-- An import job that wrote many contacts refreshes the planner's statistics of the tables it wrote
-- when it completes. Until autoanalyze next visits them (a minute away at best; never where
-- autovacuum is off), the planner reads the tables as they were before the import: an export of a
-- million contacts right after importing them was planned as a filter over the stage index and a
-- sort, 600 ms a page instead of 20 (ADR 0016). The application's role owns no table and cannot
-- `analyze`, so this function, owned by the schema owner, does it for the import worker; it reads
-- nothing a tenant could see and takes only the lock `analyze` takes (it waits behind a concurrent
-- index build or vacuum of the same table, within the role's lock timeout).
create function analyze_contacts() returns void
    language plpgsql security definer set search_path = public
    as $$
begin
    analyze contacts, contact_emails, contact_phones, contact_search, contact_tags, list_members;
end
$$;
revoke all on function analyze_contacts() from public;
grant execute on function analyze_contacts() to crm_app;
