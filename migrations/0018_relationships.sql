-- Relationships: typed links between two contacts of a tenant. A link's type is a built-in key
-- (`parent`, `spouse`, `manager`, `assistant`, `colleague`: their names live in the application)
-- or the id of one of the tenant's own types. A symmetric type's link is stored once, its contacts
-- in id order. No self-links, no duplicates; deleting either contact for good removes the link,
-- and erasing one scrubs the link's history too (migration 0019 registers links with
-- `erase_contact`).

create table relationship_types (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    forward_name text not null check (char_length(forward_name) between 1 and 50),
    reverse_name text not null check (char_length(reverse_name) between 1 and 50),
    created_at timestamptz not null default now(),
    primary key (tenant_id, id)
);
create unique index relationship_types_names_key
    on relationship_types (tenant_id, lower(forward_name), lower(reverse_name));

create table contact_relationships (
    tenant_id uuid not null,
    id uuid not null,
    from_contact uuid not null,
    to_contact uuid not null,
    type text not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    constraint contact_relationships_not_self check (from_contact <> to_contact),
    foreign key (tenant_id, from_contact) references contacts (tenant_id, id) on delete cascade,
    foreign key (tenant_id, to_contact) references contacts (tenant_id, id) on delete cascade
);
create unique index contact_relationships_once
    on contact_relationships (tenant_id, from_contact, to_contact, type);
create index contact_relationships_to on contact_relationships (tenant_id, to_contact);

alter table relationship_types enable row level security;
create policy tenant_isolation on relationship_types
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table contact_relationships enable row level security;
create policy tenant_isolation on contact_relationships
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on relationship_types, contact_relationships to crm_app;
