-- Search data for the issue-15 benchmark (infra/scripts/bench-search), over a tenant that
-- `crm seed` filled with contacts: 20 custom field definitions of every type (`score` marked
-- indexed) with a value of each on every contact, 20 tags with one on a tenth of the contacts, and
-- a note on a twentieth of them. Bulk data, run as the owner:
-- `psql -v tenant=<uuid> -f infra/bench/search.sql`.

\set ON_ERROR_STOP on
set synchronous_commit = off;

insert into custom_fields (tenant_id, id, key, label, type, options, indexed) values
    (:'tenant', gen_random_uuid(), 'account', 'Account', 'text', '[]', false),
    (:'tenant', gen_random_uuid(), 'tier', 'Tier', 'single_select',
     '[{"id": "bronze", "label": "Bronze"}, {"id": "silver", "label": "Silver"}, {"id": "gold", "label": "Gold"}, {"id": "platinum", "label": "Platinum"}]', false),
    (:'tenant', gen_random_uuid(), 'score', 'Score', 'number', '[]', true),
    (:'tenant', gen_random_uuid(), 'arr', 'ARR', 'decimal', '[]', false),
    (:'tenant', gen_random_uuid(), 'renewal', 'Renewal', 'date', '[]', false),
    (:'tenant', gen_random_uuid(), 'last_demo', 'Last demo', 'date_time', '[]', false),
    (:'tenant', gen_random_uuid(), 'vip', 'VIP', 'boolean', '[]', false),
    (:'tenant', gen_random_uuid(), 'region', 'Region', 'single_select',
     (select jsonb_agg(jsonb_build_object('id', 'r' || i, 'label', 'Region ' || i)) from generate_series(1, 10) i), false),
    (:'tenant', gen_random_uuid(), 'industry', 'Industry', 'single_select',
     (select jsonb_agg(jsonb_build_object('id', 'i' || i, 'label', 'Industry ' || i)) from generate_series(1, 20) i), false),
    (:'tenant', gen_random_uuid(), 'interests', 'Interests', 'multi_select',
     (select jsonb_agg(jsonb_build_object('id', 't' || i, 'label', 'Topic ' || i)) from generate_series(1, 8) i), false),
    (:'tenant', gen_random_uuid(), 'website', 'Website', 'url', '[]', false),
    (:'tenant', gen_random_uuid(), 'billing_email', 'Billing email', 'email', '[]', false),
    (:'tenant', gen_random_uuid(), 'mobile', 'Mobile', 'phone', '[]', false),
    (:'tenant', gen_random_uuid(), 'nickname', 'Nickname', 'text', '[]', false),
    (:'tenant', gen_random_uuid(), 'bio', 'Bio', 'long_text', '[]', false),
    (:'tenant', gen_random_uuid(), 'seats', 'Seats', 'number', '[]', false),
    (:'tenant', gen_random_uuid(), 'employees', 'Employees', 'number', '[]', false),
    (:'tenant', gen_random_uuid(), 'campaign', 'Campaign', 'text', '[]', false),
    (:'tenant', gen_random_uuid(), 'churn_risk', 'Churn risk', 'decimal', '[]', false),
    (:'tenant', gen_random_uuid(), 'onboarded', 'Onboarded', 'boolean', '[]', false);

create temporary table seeded as
    select id, row_number() over (order by id) as n from contacts where tenant_id = :'tenant';
create index on seeded (id);

-- Custom values change no search document: the refresh trigger sits this one out.
alter table contacts disable trigger contact_search_contacts_updated;
update contacts c set custom = jsonb_build_object(
        'account', 'A-' || s.n,
        'tier', (array['bronze', 'silver', 'gold', 'platinum'])[1 + s.n % 4],
        'score', s.n % 1000,
        'arr', round((s.n % 100000) / 7.0, 2),
        'renewal', to_char(date '2027-01-01' + (s.n % 730)::int, 'YYYY-MM-DD'),
        'last_demo', rfc3339(timestamptz '2026-01-01' + (s.n % 300000) * interval '1 minute'),
        'vip', s.n % 10 = 0,
        'region', 'r' || (1 + s.n % 10),
        'industry', 'i' || (1 + s.n % 20),
        'interests', jsonb_build_array('t' || (1 + s.n % 8), 't' || (1 + (s.n / 8) % 8)),
        'website', 'https://example.com/' || s.n,
        'billing_email', 'billing' || s.n || '@example.com',
        'mobile', '+1212555' || lpad((s.n % 10000)::text, 4, '0'),
        'nickname', 'nick' || (s.n % 5000),
        'bio', 'Customer since ' || (2000 + s.n % 25) || '; likes ' || (array['rust', 'spin', 'postgres', 'wasm'])[1 + s.n % 4],
        'seats', s.n % 500,
        'employees', (s.n % 10000) * 3,
        'campaign', 'campaign-' || (s.n % 300),
        'churn_risk', round((s.n % 100) / 100.0, 2),
        'onboarded', s.n % 3 <> 0)
from seeded s where c.tenant_id = :'tenant' and c.id = s.id;
alter table contacts enable trigger contact_search_contacts_updated;

insert into tags (tenant_id, id, name, colour)
select :'tenant', gen_random_uuid(), 'Segment ' || i, '#1f77b4' from generate_series(1, 20) i;
insert into contact_tags (tenant_id, contact_id, tag_id)
select :'tenant', s.id, t.id
from seeded s
join (select id, row_number() over (order by name) - 1 as k from tags where tenant_id = :'tenant') t
  on t.k = (s.n / 10) % 20
where s.n % 10 = 0;

-- Notes on a twentieth of the contacts; a note's words find its contact (`q`).
insert into contact_notes (tenant_id, id, contact_id, body, author_type, author_id)
select :'tenant', gen_random_uuid(), s.id,
       'Asked about ' || (array['pricing', 'onboarding', 'renewal', 'integrations', 'security review',
                                'migration', 'webhooks', 'quarterly planning'])[1 + (s.n / 20) % 8]
       || ' during call ' || s.n, 'user', 'user-' || (s.n % 20)
from seeded s where s.n % 20 = 0;
