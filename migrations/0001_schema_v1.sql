-- Schema v1: tenants, contacts with their emails and phones, the audit log, the outbox and
-- idempotency keys. Every tenant table is keyed by tenant first and guarded by row-level security.

-- The role the application connects as. It owns nothing, so RLS applies to it. Its password (if any)
-- is set by the operator: `alter role crm_app password '...'`.
do $$
begin
    if not exists (select from pg_roles where rolname = 'crm_app') then
        create role crm_app login;
    end if;
exception
    -- Another database of the same cluster created it a moment ago (roles are cluster-wide).
    when duplicate_object or unique_violation then null;
end
$$;

-- The tenant of the current transaction, as set by the application with
-- `set_config('app.tenant_id', $1, true)`. Null when unset, so policies match no row.
create function app_tenant_id() returns uuid
    language sql stable
    as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- Timestamps leave the database as RFC 3339 UTC text with microseconds: the one format that reads
-- the same through Spin's pg host and tokio-postgres, and the one the API returns.
create function rfc3339(t timestamptz) returns text
    language sql immutable parallel safe
    as $$ select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- Maintains updated_at on every update; one helper for every table.
create function set_updated_at() returns trigger
    language plpgsql
    as $$
begin
    new.updated_at := now();
    return new;
end
$$;

create table tenants (
    id uuid primary key,
    name text not null check (length(name) between 1 and 200),
    default_region text not null default 'US' check (default_region ~ '^[A-Z]{2}$'),
    settings jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create trigger tenants_updated_at before update on tenants
    for each row execute function set_updated_at();

create table contacts (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    first_name text,
    last_name text,
    display_name text not null,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    deleted_at timestamptz,
    primary key (tenant_id, id)
);
create trigger contacts_updated_at before update on contacts
    for each row execute function set_updated_at();

-- `live` mirrors "the contact is not deleted" so that email uniqueness can hold among live contacts
-- only: a partial unique index cannot look at another table.
create table contact_emails (
    tenant_id uuid not null,
    contact_id uuid not null,
    position smallint not null,
    address text not null,
    address_key text not null,
    label text,
    is_primary boolean not null default false,
    live boolean not null default true,
    primary key (tenant_id, contact_id, position),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
create unique index contact_emails_live_address_key
    on contact_emails (tenant_id, address_key) where live;

create table contact_phones (
    tenant_id uuid not null,
    contact_id uuid not null,
    position smallint not null,
    raw text not null,
    e164 text not null,
    region text not null,
    national text not null,
    label text,
    is_primary boolean not null default false,
    primary key (tenant_id, contact_id, position),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
create index contact_phones_e164 on contact_phones (tenant_id, e164);

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
    primary key (tenant_id, id)
);
create index audit_log_entity on audit_log (tenant_id, entity_type, entity_id, id);

create table outbox_events (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    -- A global, increasing position for dispatchers to walk the outbox in order.
    seq bigint generated always as identity,
    event_type text not null,
    entity_type text not null,
    entity_id uuid not null,
    payload jsonb not null,
    request_id text not null,
    occurred_at timestamptz not null default now(),
    primary key (tenant_id, id)
);
create index outbox_events_seq on outbox_events (seq);

-- One row per (tenant, key). A claim is `in_flight` until the request's own transaction stores the
-- response; a claim older than `locked_until` was abandoned by a crashed request and may be retaken.
create table idempotency_keys (
    tenant_id uuid not null references tenants (id),
    key text not null check (length(key) between 1 and 255),
    request_hash text not null,
    status text not null check (status in ('in_flight', 'completed')),
    response_status smallint,
    response_headers jsonb,
    response_body bytea,
    locked_until timestamptz not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null default now() + interval '24 hours',
    primary key (tenant_id, key)
);
create index idempotency_keys_expires_at on idempotency_keys (expires_at);

-- Row-level security: every tenant table is visible and writable only for the transaction's tenant.
alter table tenants enable row level security;
create policy tenant_isolation on tenants
    using (id = app_tenant_id()) with check (id = app_tenant_id());

do $$
declare
    tenant_table text;
begin
    foreach tenant_table in array array[
        'contacts', 'contact_emails', 'contact_phones', 'audit_log', 'outbox_events', 'idempotency_keys'
    ] loop
        execute format('alter table %I enable row level security', tenant_table);
        execute format(
            'create policy tenant_isolation on %I using (tenant_id = app_tenant_id()) '
            'with check (tenant_id = app_tenant_id())',
            tenant_table
        );
    end loop;
end
$$;

-- What the application may do. The audit log is append-only for it.
grant usage on schema public to crm_app;
grant select on tenants to crm_app;
grant select, insert, update, delete on contacts, contact_emails, contact_phones, idempotency_keys
    to crm_app;
grant select, insert on audit_log, outbox_events to crm_app;
grant execute on function app_tenant_id(), rfc3339(timestamptz) to crm_app;
