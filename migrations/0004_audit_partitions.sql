-- The audit log becomes range-partitioned by month (UTC). The v1 table's rows are copied into the
-- partitioned one. It stays append-only for crm_app (select and insert only).

alter table audit_log rename to audit_log_v1;
alter index audit_log_entity rename to audit_log_v1_entity;

create table audit_log (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    occurred_at timestamptz not null default now(),
    actor text not null,
    action text not null,
    entity_type text not null,
    entity_id uuid not null,
    request_id text not null,
    changes jsonb not null default '[]'::jsonb,
    primary key (tenant_id, occurred_at, id)
) partition by range (occurred_at);
create index audit_log_by_id on audit_log (tenant_id, id);
create index audit_log_entity on audit_log (tenant_id, entity_type, entity_id, occurred_at);
create index audit_log_actor on audit_log (tenant_id, actor, occurred_at);

-- Creates the monthly partitions from the month of p_from through p_months months after it, each
-- `audit_log_YYYY_MM` covering [first of the month, first of the next) in UTC. Returns how many it
-- created. `crm migrate` and `crm audit maintain` call it.
create function ensure_audit_partitions(p_from timestamptz, p_months int) returns int
    language plpgsql
    as $$
declare
    month_start timestamp;
    created int := 0;
    partition_name text;
begin
    for i in 0..p_months loop
        month_start := date_trunc('month', p_from at time zone 'UTC') + make_interval(months => i);
        partition_name := format('audit_log_%s', to_char(month_start, 'YYYY_MM'));
        if to_regclass(partition_name) is null then
            execute format(
                'create table %I partition of audit_log for values from (%L) to (%L)',
                partition_name,
                (month_start at time zone 'UTC')::text,
                ((month_start + interval '1 month') at time zone 'UTC')::text
            );
            -- Queries through audit_log use its policy; a partition keeps its own, for anyone
            -- who is ever granted it directly.
            execute format('alter table %I enable row level security', partition_name);
            execute format(
                'create policy tenant_isolation on %I using (tenant_id = app_tenant_id()) '
                'with check (tenant_id = app_tenant_id())',
                partition_name
            );
            created := created + 1;
        end if;
    end loop;
    return created;
end
$$;

do $$
declare
    oldest timestamptz;
begin
    select coalesce(min(occurred_at), now()) into oldest from audit_log_v1;
    perform ensure_audit_partitions(oldest,
        ((extract(year from age(now(), oldest)) * 12 + extract(month from age(now(), oldest)))::int) + 12);
end
$$;

insert into audit_log (tenant_id, id, occurred_at, actor, action, entity_type, entity_id, request_id, changes)
select tenant_id, id, occurred_at, actor, action, entity_type, entity_id, request_id, changes from audit_log_v1;
drop table audit_log_v1;

alter table audit_log enable row level security;
create policy tenant_isolation on audit_log
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert on audit_log to crm_app;
