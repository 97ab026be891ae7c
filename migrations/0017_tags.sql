-- Tags: a tenant's vocabulary (a name unique case-insensitively, a colour, a description) and the
-- tags attached to each contact. A contact's tags are read through the vocabulary, so renaming a
-- tag shows on every contact at once; deleting a tag detaches it everywhere; erasing or deleting a
-- contact for good removes its attachments.

create table tags (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    name text not null check (char_length(name) between 1 and 50),
    colour text check (colour ~ '^#[0-9a-f]{6}$'),
    description text check (char_length(description) <= 500),
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id)
);
create unique index tags_name_key on tags (tenant_id, lower(name));
create trigger tags_updated_at before update on tags
    for each row execute function set_updated_at();

create table contact_tags (
    tenant_id uuid not null,
    contact_id uuid not null,
    tag_id uuid not null,
    attached_at timestamptz not null default now(),
    primary key (tenant_id, contact_id, tag_id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade,
    foreign key (tenant_id, tag_id) references tags (tenant_id, id) on delete cascade
);
-- Which contacts carry a tag: its contact count, and the contacts list's tag filters.
create index contact_tags_by_tag on contact_tags (tenant_id, tag_id, contact_id);

alter table tags enable row level security;
create policy tenant_isolation on tags
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table contact_tags enable row level security;
create policy tenant_isolation on contact_tags
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on tags, contact_tags to crm_app;
