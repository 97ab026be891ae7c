-- Import jobs (docs/adr/0016-imports-and-exports.md).
--
-- * `imports`: one row per job: its options, how far its upload and its work have come, its
--   counters. A job is created `awaiting_upload`, receives its file in numbered parts, is `queued`
--   when started, `running` while steps apply it, and ends `completed`, `failed` or `cancelled`.
-- * `import_rows`: the file read into records as each part arrives (a record cut by a part's end is
--   carried in `imports.tail` until the next part completes it), numbered as a spreadsheet numbers
--   them (the CSV header is row 1). A step applies the next rows after `last_row` and advances it
--   in the same transaction as their writes, so a step that dies changes nothing and the next one
--   starts where it stopped: no row is applied twice. A job's rows are deleted when it ends (they are
--   personal data the contacts now hold, or that the job no longer needs).
-- * `import_errors`: each problem of a row (a record that cannot be read, a value the contact
--   refuses), by row and column, kept with the job.
-- * `import_claim`: the one cross-tenant read, a worker's lease on the next job with work to do.

create table imports (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    status text not null default 'awaiting_upload'
        check (status in ('awaiting_upload', 'queued', 'running', 'completed', 'failed',
                          'cancelled')),
    format text not null check (format in ('csv', 'ndjson')),
    options jsonb not null check (jsonb_typeof(options) = 'object'),
    parts integer not null default 0,
    bytes bigint not null default 0,
    header text[],
    tail bytea not null default '',
    rows_total bigint not null default 0,
    rows_done bigint not null default 0,
    last_row bigint not null default 0,
    next_row bigint not null default 1,
    created bigint not null default 0,
    updated bigint not null default 0,
    skipped bigint not null default 0,
    failed bigint not null default 0,
    error text,
    actor_type text not null,
    actor text not null,
    lease_until timestamptz,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz,
    primary key (tenant_id, id)
);
create index imports_by_creation on imports (tenant_id, created_at desc, id desc);
-- The jobs with work to do, for the claim.
create index imports_pending on imports (lease_until nulls first)
    where status in ('queued', 'running');
create trigger imports_updated_at before update on imports
    for each row execute function set_updated_at();

create table import_rows (
    tenant_id uuid not null,
    import_id uuid not null,
    row_number bigint not null,
    record text,
    problem jsonb,
    primary key (tenant_id, import_id, row_number),
    foreign key (tenant_id, import_id) references imports (tenant_id, id) on delete cascade,
    check ((record is null) <> (problem is null))
);

create table import_errors (
    tenant_id uuid not null,
    import_id uuid not null,
    row_number bigint not null,
    position integer not null,
    column_name text,
    code text not null,
    message text not null,
    primary key (tenant_id, import_id, row_number, position),
    foreign key (tenant_id, import_id) references imports (tenant_id, id) on delete cascade
);

alter table imports enable row level security;
create policy tenant_isolation on imports
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table import_rows enable row level security;
create policy tenant_isolation on import_rows
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table import_errors enable row level security;
create policy tenant_isolation on import_errors
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on imports, import_rows, import_errors to crm_app;

-- The next job with work to do whose lease has run out (or was never taken), leased to the caller
-- for `p_lease_seconds`: its tenant and id, or no row. Jobs are taken least recently worked first,
-- so that every tenant's job advances in turn.
create function import_claim(p_lease_seconds int)
    returns table (tenant_id uuid, import_id uuid)
    language sql security definer set search_path = public
    as $$
    with next as (
        select i.tenant_id, i.id from imports i
        where i.status in ('queued', 'running')
          and (i.lease_until is null or i.lease_until < now())
        order by i.lease_until nulls first
        limit 1
        for update skip locked
    )
    update imports i
       set lease_until = now() + make_interval(secs => p_lease_seconds)
      from next
     where i.tenant_id = next.tenant_id and i.id = next.id
    returning i.tenant_id, i.id
    $$;
revoke all on function import_claim(int) from public;
grant execute on function import_claim(int) to crm_app;
