-- Custom fields: a tenant's own contact fields, defined here (a stable snake_case key, a label, a
-- type and its rules); at most 200 per tenant, archived rather than deleted, so that a key once
-- used keeps its meaning in history and exports.

create table custom_fields (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    key text not null check (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    label text not null check (char_length(label) between 1 and 100),
    type text not null check (type in ('text', 'long_text', 'number', 'decimal', 'boolean', 'date',
                                       'date_time', 'single_select', 'multi_select', 'url', 'email',
                                       'phone')),
    description text check (char_length(description) <= 500),
    required boolean not null default false,
    unique_values boolean not null default false,
    default_value jsonb,
    min_length integer check (min_length >= 0),
    max_length integer check (max_length >= 1),
    min_value double precision,
    max_value double precision,
    options jsonb not null default '[]'::jsonb check (jsonb_typeof(options) = 'array'),
    indexed boolean not null default false,
    archived boolean not null default false,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id)
);
create unique index custom_fields_key on custom_fields (tenant_id, key);
create trigger custom_fields_updated_at before update on custom_fields
    for each row execute function set_updated_at();

alter table custom_fields enable row level security;
create policy tenant_isolation on custom_fields
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update on custom_fields to crm_app;
