-- Notes on a contact: a Markdown body kept as written (at most 64 KiB, checked by the application
-- and bounded here), pinned or not, written by an actor (its kind and id, as the audit log names
-- it). A contact's notes are listed pinned first, newest first. Erasing a contact erases its notes
-- and scrubs their history (a note about a person is their personal data): migration 0019
-- registers them with `erase_contact`.

create table contact_notes (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    contact_id uuid not null,
    body text not null check (octet_length(body) between 1 and 65536),
    pinned boolean not null default false,
    author_type text not null,
    author_id text not null,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
create trigger contact_notes_updated_at before update on contact_notes
    for each row execute function set_updated_at();
create index contact_notes_listing
    on contact_notes (tenant_id, contact_id, pinned desc, created_at desc, id desc);

alter table contact_notes enable row level security;
create policy tenant_isolation on contact_notes
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on contact_notes to crm_app;
