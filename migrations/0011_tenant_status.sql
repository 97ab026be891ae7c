-- A tenant can be suspended (`crm tenant set ID --status suspended`): its tokens then answer 403
-- until it is active again.
alter table tenants add column status text not null default 'active';
alter table tenants add constraint tenants_status check (status in ('active', 'suspended'));
