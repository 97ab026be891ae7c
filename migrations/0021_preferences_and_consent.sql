-- Communication preferences and consent. A contact's preferences are one row (absent until first
-- set): a preferred channel, a BCP 47 language, an IANA time zone and a do-not-contact flag per
-- channel. Consent records are appended, never changed (the application role may only insert and
-- read them), so the state of every purpose at any past moment is the latest record effective by
-- then; erasure removes them with the contact (registered in contact_owned_rows).

create table contact_preferences (
    tenant_id uuid not null,
    contact_id uuid not null,
    preferred_channel text check (preferred_channel in ('email', 'phone', 'sms', 'post')),
    language text check (char_length(language) between 1 and 64),
    time_zone text check (char_length(time_zone) between 1 and 64),
    do_not_email boolean not null default false,
    do_not_phone boolean not null default false,
    do_not_sms boolean not null default false,
    do_not_post boolean not null default false,
    version bigint not null default 1,
    updated_at timestamptz not null default now(),
    primary key (tenant_id, contact_id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
create trigger contact_preferences_updated_at before update on contact_preferences
    for each row execute function set_updated_at();

create table consent_records (
    tenant_id uuid not null,
    id uuid not null,
    contact_id uuid not null,
    purpose text not null check (purpose ~ '^[a-z][a-z0-9_]{0,63}$'),
    status text not null check (status in ('granted', 'withdrawn')),
    legal_basis text not null check (legal_basis in ('consent', 'contract', 'legal_obligation',
                                                     'vital_interests', 'public_task',
                                                     'legitimate_interests')),
    source text not null check (char_length(source) between 1 and 200),
    evidence text check (char_length(evidence) <= 1000),
    effective_at timestamptz not null,
    recorded_by_type text not null,
    recorded_by text not null,
    recorded_at timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, contact_id) references contacts (tenant_id, id) on delete cascade
);
-- A purpose's latest record (its state now, or at a moment), and a contact's records newest first.
create index consent_records_by_purpose
    on consent_records (tenant_id, contact_id, purpose, effective_at desc, id desc);

alter table contact_preferences enable row level security;
create policy tenant_isolation on contact_preferences
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
alter table consent_records enable row level security;
create policy tenant_isolation on consent_records
    using (tenant_id = app_tenant_id()) with check (tenant_id = app_tenant_id());
grant select, insert, update, delete on contact_preferences to crm_app;
grant select, insert on consent_records to crm_app;

insert into contact_owned_rows (entity_type, table_name, contact_columns)
    values ('consent', 'consent_records', '{contact_id}');
