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
-- The deliveries of the events about a contact (the timeline walks the contact's rows, then these).
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

-- The timeline's page in one call, as `contact_by_id` (migration 0015) reads a contact: it sets the
-- tenant and reads under row-level security as its caller, refuses to run inside a transaction a
-- trapped request left open (CR001), and, being PL/pgSQL, keeps its plan for the connection's next
-- call, where a statement sent as text would be planned anew across every audit partition on each
-- request (through Spin's outbound PostgreSQL, every statement is). Each source is limited and
-- ordered on its own index from the cursor, then the two are merged by (time, id). A contact that
-- is not live has no entries.
create function contact_timeline(p_tenant uuid, p_contact uuid, p_kinds text[], p_from timestamptz,
                                 p_to timestamptz, p_after_at timestamptz, p_after_id uuid,
                                 p_limit int)
    returns table (id uuid, kind text, at text, actor_type text, actor text, action text,
                   entity_type text, entity_id uuid, details jsonb)
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
    select e.id, e.kind, rfc3339(e.at), e.actor_type, e.actor, e.action, e.entity_type,
           e.entity_id, e.details
    from (
        (select a.id, ca.kind, ca.occurred_at as at, a.actor_type, a.actor, a.action,
                a.entity_type, a.entity_id, a.changes as details
         from contact_activity ca
         join audit_log a on a.tenant_id = ca.tenant_id and a.occurred_at = ca.occurred_at
                         and a.id = ca.audit_id
         where ca.tenant_id = p_tenant and ca.contact_id = p_contact
           and (p_kinds is null or ca.kind = any(p_kinds))
           and (p_from is null or ca.occurred_at >= p_from)
           and (p_to is null or ca.occurred_at < p_to)
           and (p_after_at is null or (ca.occurred_at, ca.audit_id) < (p_after_at, p_after_id))
         order by ca.occurred_at desc, ca.audit_id desc
         limit p_limit)
        union all
        (select d.id, 'deliveries', d.created_at, 'system', 'webhook-dispatcher', d.status,
                'delivery', d.id,
                jsonb_build_object('webhook_id', d.subscription_id, 'event_id', d.event_id,
                                   'event_type', d.event_type, 'attempts', d.attempts,
                                   'last_status_code', d.last_status_code,
                                   'completed_at', rfc3339(d.completed_at))
         from contact_activity ca
         join webhook_deliveries d on d.tenant_id = ca.tenant_id and d.event_id = ca.event_id
         where ca.tenant_id = p_tenant and ca.contact_id = p_contact and ca.event_id is not null
           and (p_kinds is null or 'deliveries' = any(p_kinds))
           and (p_from is null or d.created_at >= p_from)
           and (p_to is null or d.created_at < p_to)
           and (p_after_at is null or (d.created_at, d.id) < (p_after_at, p_after_id))
         order by d.created_at desc, d.id desc
         limit p_limit)
    ) e
    where exists (select 1 from contacts c
                  where c.tenant_id = p_tenant and c.id = p_contact and c.deleted_at is null)
    order by e.at desc, e.id desc
    limit p_limit;
end
$$;
revoke all on function contact_timeline(uuid, uuid, text[], timestamptz, timestamptz, timestamptz,
                                        uuid, int) from public;
grant execute on function contact_timeline(uuid, uuid, text[], timestamptz, timestamptz,
                                           timestamptz, uuid, int) to crm_app;
