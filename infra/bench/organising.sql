-- Organising data for the issue-14 benchmark (infra/scripts/bench-organising), over a tenant that
-- `crm seed` filled with contacts: 50 tags with 3 per contact, about 5 notes and 2 calls per
-- contact, and the audit records and timeline rows the API would have written for them (a create
-- per contact, a create per note and call, one tag change per contact), dated within this month.
-- Bulk data, run as the owner: `psql -v tenant=<uuid> -f infra/bench/organising.sql`.

\set ON_ERROR_STOP on
set synchronous_commit = off;

create temporary table seeded as
    select id, row_number() over () as n,
           date_trunc('month', now()) + random() * (now() - date_trunc('month', now())) as at
    from contacts where tenant_id = :'tenant';

insert into tags (tenant_id, id, name, colour)
select :'tenant', gen_random_uuid(), 'Tag ' || i, '#1f77b4' from generate_series(1, 50) i;
create temporary table tag_ids as
    select id, row_number() over (order by name) - 1 as k from tags where tenant_id = :'tenant';

insert into contact_tags (tenant_id, contact_id, tag_id)
select :'tenant', s.id, t.id
from seeded s cross join generate_series(0, 2) j
join tag_ids t on t.k = (s.n * 7 + j * 17) % 50;

insert into contact_notes (tenant_id, id, contact_id, body, author_type, author_id, created_at, updated_at)
select :'tenant', gen_random_uuid(), s.id,
       'Met at the conference; follow up about the renewal (' || j || ').', 'user', 'user-' || (s.n % 20),
       s.at + j * interval '1 minute', s.at + j * interval '1 minute'
-- `s.n * 0` ties the count to the row, so random() is drawn per contact (0 to 10, 5 on average).
from seeded s cross join lateral generate_series(1, (random() * 10 + s.n * 0)::int) j;

insert into calls (tenant_id, id, contact_id, direction, from_raw, from_e164, from_region, to_raw,
                   to_e164, to_region, started_at, duration_seconds, status, agent_id, created_at)
select :'tenant', gen_random_uuid(), s.id, 'inbound', '+14155550100', '+14155550100', 'US',
       '+14155550199', '+14155550199', 'US', s.at + j * interval '1 hour', 60 + j, 'completed',
       'agent-' || (s.n % 10), s.at + j * interval '1 hour'
from seeded s cross join lateral generate_series(1, (random() * 4 + s.n * 0)::int) j;

-- What the API writes beside each change: its audit record and, per contact it is about, a
-- timeline row. Ids are v7-like (time-ordered) enough for the index: random is what matters here.
create temporary table seeded_changes as
    select s.id as contact_id, s.at as occurred_at, gen_random_uuid() as audit_id, 'create' as action,
           'contact' as entity_type, s.id as entity_id, 'contact' as kind,
           '[{"field":"first_name","old":null,"new":"Ada"}]'::jsonb as changes
    from seeded s
    union all
    select s.id, s.at + interval '1 second', gen_random_uuid(), 'tag', 'contact', s.id, 'tags',
           '[{"field":"tags","old":[],"new":[{"name":"Tag 1"}]}]'::jsonb
    from seeded s
    union all
    select n.contact_id, n.created_at, gen_random_uuid(), 'create', 'note', n.id, 'notes',
           jsonb_build_array(jsonb_build_object('field', 'body', 'old', null, 'new', n.body))
    from contact_notes n where n.tenant_id = :'tenant'
    union all
    select c.contact_id, c.created_at, gen_random_uuid(), 'create', 'call', c.id, 'calls',
           '[{"field":"status","old":null,"new":"completed"}]'::jsonb
    from calls c where c.tenant_id = :'tenant' and c.contact_id is not null;

insert into audit_log (tenant_id, id, occurred_at, actor, actor_type, action, entity_type, entity_id,
                       request_id, changes)
select :'tenant', audit_id, occurred_at, 'user-1', 'user', action, entity_type, entity_id, 'seed', changes
from seeded_changes;
insert into contact_activity (tenant_id, contact_id, occurred_at, audit_id, kind)
select :'tenant', contact_id, occurred_at, audit_id, kind from seeded_changes;

select (select count(*) from contact_notes where tenant_id = :'tenant') as notes,
       (select count(*) from contact_tags where tenant_id = :'tenant') as tag_links,
       (select count(*) from calls where tenant_id = :'tenant') as calls,
       (select count(*) from contact_activity where tenant_id = :'tenant') as timeline_rows;
