-- An audit write never fails for want of a partition: rows whose month has no partition yet land
-- in `audit_log_default`. Creating a month's partition later (`crm audit maintain`, `crm maintain`)
-- moves that month's rows out of the default partition first, since PostgreSQL refuses a new
-- partition whose range the default partition already holds rows for.

create table audit_log_default partition of audit_log default;
alter table audit_log_default enable row level security;
create policy tenant_isolation on audit_log_default
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());

create or replace function ensure_audit_partitions(p_from timestamptz, p_months int) returns int
    language plpgsql
    as $$
declare
    month_start timestamp;
    range_from timestamptz;
    range_to timestamptz;
    created int := 0;
    partition_name text;
begin
    for i in 0..p_months loop
        month_start := date_trunc('month', p_from at time zone 'UTC') + make_interval(months => i);
        range_from := month_start at time zone 'UTC';
        range_to := (month_start + interval '1 month') at time zone 'UTC';
        partition_name := format('audit_log_%s', to_char(month_start, 'YYYY_MM'));
        if to_regclass(partition_name) is null then
            execute format(
                'create table %I (like audit_log including defaults including constraints)',
                partition_name
            );
            execute format(
                'with moved as (delete from audit_log_default
                                where occurred_at >= %L and occurred_at < %L returning *)
                 insert into %I select * from moved',
                range_from, range_to, partition_name
            );
            execute format(
                'alter table audit_log attach partition %I for values from (%L) to (%L)',
                partition_name, range_from::text, range_to::text
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
