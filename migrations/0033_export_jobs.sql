-- Export jobs (docs/adr/0016-imports-and-exports.md): a large export written by the worker in
-- bounded steps, each step one chunk of the file and the cursor after it, so that a step that dies
-- is redone from the same cursor; downloaded until it expires (`crm maintain` deletes it then: the
-- file is personal data).

create table exports (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    status text not null default 'queued'
        check (status in ('queued', 'running', 'completed', 'failed')),
    format text not null check (format in ('csv', 'ndjson')),
    request jsonb not null check (jsonb_typeof(request) = 'object'),
    position jsonb,
    chunks integer not null default 0,
    rows_written bigint not null default 0,
    bytes bigint not null default 0,
    error text,
    actor_type text not null,
    actor text not null,
    lease_until timestamptz,
    expires_at timestamptz,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finished_at timestamptz,
    primary key (tenant_id, id)
);
create index exports_by_creation on exports (tenant_id, created_at desc, id desc);
create index exports_pending on exports (lease_until nulls first)
    where status in ('queued', 'running');
create index exports_expiring on exports (expires_at) where expires_at is not null;
create trigger exports_updated_at before update on exports
    for each row execute function set_updated_at();

create table export_chunks (
    tenant_id uuid not null,
    export_id uuid not null,
    seq integer not null,
    data bytea not null,
    primary key (tenant_id, export_id, seq),
    foreign key (tenant_id, export_id) references exports (tenant_id, id) on delete cascade
);

alter table exports enable row level security;
create policy tenant_isolation on exports
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table export_chunks enable row level security;
create policy tenant_isolation on export_chunks
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on exports, export_chunks to crm_app;

-- The next export with work to do whose lease has run out, leased to the caller (as
-- `import_claim` does for imports).
create function export_claim(p_lease_seconds int)
    returns table (tenant_id uuid, export_id uuid)
    language sql security definer set search_path = public
    as $$
    with next as (
        select e.tenant_id, e.id from exports e
        where e.status in ('queued', 'running')
          and (e.lease_until is null or e.lease_until < now())
        order by e.lease_until nulls first
        limit 1
        for update skip locked
    )
    update exports e
       set lease_until = now() + make_interval(secs => p_lease_seconds)
      from next
     where e.tenant_id = next.tenant_id and e.id = next.id
    returning e.tenant_id, e.id
    $$;
revoke all on function export_claim(int) from public;
grant execute on function export_claim(int) to crm_app;
