-- The activity timeline's index: for every audit record, one row per contact the change is about
-- (a contact's own changes, and those of what it owns: calls, notes, links, consent records), with
-- the kind of entry it makes and the outbox event written beside it (whose webhook deliveries are
-- about the contact too). The unit of work writes these rows in the statement that writes the audit
-- record; a row goes with its contact (erasure deletes the contact for good).

create table contact_activity (
    tenant_id uuid not null,
    contact_id uuid not null,
    occurred_at timestamptz not null,
    audit_id uuid not null,
    event_id uuid,
    kind text not null,
    primary key (tenant_id, contact_id, occurred_at, audit_id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
-- The deliveries of an event about a contact.
create index contact_activity_by_event on contact_activity (tenant_id, event_id) where event_id is not null;
create index webhook_deliveries_by_event on webhook_deliveries (tenant_id, event_id);

alter table contact_activity enable row level security;
create policy tenant_isolation on contact_activity
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert on contact_activity to crm_app;

-- What happened before this migration: the audit records of contacts that still exist, and of
-- their calls, notes and links (by the rows that still name them). Their events are not linked.
insert into contact_activity (tenant_id, contact_id, occurred_at, audit_id, kind)
select a.tenant_id, subject.contact_id, a.occurred_at, a.id,
       case
           when a.entity_type = 'contact' and a.action = 'tag' then 'tags'
           when a.entity_type = 'contact' and a.action in ('list_add', 'list_remove') then 'lists'
           when a.entity_type = 'call' then 'calls'
           when a.entity_type = 'note' then 'notes'
           when a.entity_type = 'relationship' then 'relationships'
           else 'contact'
       end
from audit_log a
cross join lateral (
    select a.entity_id as contact_id where a.entity_type = 'contact'
    union select c.contact_id from calls c
        where a.entity_type = 'call' and c.tenant_id = a.tenant_id and c.id = a.entity_id
              and c.contact_id is not null
    union select n.contact_id from contact_notes n
        where a.entity_type = 'note' and n.tenant_id = a.tenant_id and n.id = a.entity_id
    union select unnest(array[r.from_contact, r.to_contact]) from contact_relationships r
        where a.entity_type = 'relationship' and r.tenant_id = a.tenant_id and r.id = a.entity_id
) subject
where exists (select 1 from contacts k where k.tenant_id = a.tenant_id and k.id = subject.contact_id)
on conflict do nothing;
