-- Lists: named groups of a tenant's contacts. A static list holds the members added to it
-- (`list_members`); a smart list keeps a saved contacts filter (`filter`, the members of the
-- contacts list's query parameters) and holds whichever live contacts it matches when read.
-- Deleting a list removes its memberships; deleting a contact for good (erasure) removes its own.
-- A soft-deleted contact keeps its memberships, hidden until it is restored.

create table lists (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    name text not null check (char_length(name) between 1 and 100),
    description text check (char_length(description) <= 1000),
    kind text not null check (kind in ('static', 'smart')),
    filter jsonb check (filter is null or jsonb_typeof(filter) = 'object'),
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    constraint lists_smart_have_a_filter check ((kind = 'smart') = (filter is not null))
);
create unique index lists_name_key on lists (tenant_id, lower(name));
create trigger lists_updated_at before update on lists
    for each row execute function set_updated_at();

create table list_members (
    tenant_id uuid not null,
    list_id uuid not null,
    contact_id uuid not null,
    added_at timestamptz not null default now(),
    primary key (tenant_id, list_id, contact_id),
    foreign key (tenant_id, list_id) references lists (tenant_id, id) on delete cascade,
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
-- The lists a contact is on.
create index list_members_by_contact on list_members (tenant_id, contact_id);

alter table lists enable row level security;
create policy tenant_isolation on lists
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table list_members enable row level security;
create policy tenant_isolation on list_members
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on lists, list_members to crm_app;
