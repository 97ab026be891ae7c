-- Who made a change, by kind: a person (`user`, by token `sub`), an integration acting for itself
-- (`api_client`), an import job, a workflow rule or the service itself (`system`). Audit records
-- keep the id in `actor` and gain its kind; outbox events carry both as `actor` {type, id}.
-- Records written before this migration were all made through the API by token subjects: `user`.
alter table audit_log add column actor_type text not null default 'user';
alter table audit_log add constraint audit_log_actor_type
    check (actor_type in ('user', 'api_client', 'import_job', 'workflow_rule', 'system'));
alter table outbox_events add column actor jsonb;
