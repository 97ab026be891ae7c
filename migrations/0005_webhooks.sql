-- Webhooks: subscriptions, and deliveries fanned out from the outbox. Subscriptions and deliveries
-- are tenant tables under row-level security like every other; the dispatcher works across tenants
-- only through three narrow security-definer functions (fan out, claim, record an attempt).

-- UUIDv7 in SQL (PostgreSQL 15 has none): 48 bits of Unix milliseconds, version 7, variant 10.
create function uuid_v7() returns uuid
    language sql volatile
    as $$
        select encode(
            set_bit(set_bit(
                overlay(uuid_send(gen_random_uuid())
                        placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                        from 1 for 6),
                52, 1), 53, 1),
            'hex')::uuid
    $$;

create table webhook_subscriptions (
    tenant_id uuid not null references tenants (id),
    id uuid not null,
    url text not null,
    -- Exact types (`contact.created`), families (`contact.*`) or everything (`*`).
    event_types text[] not null check (cardinality(event_types) > 0),
    description text,
    active boolean not null default true,
    -- Why the dispatcher turned it off: `gone` (the receiver answered 410) or `failing`.
    disabled_reason text check (disabled_reason in ('gone', 'failing')),
    -- Signing secrets (`whsec_` + base64). After a rotation the previous one stays valid, and is
    -- signed with too, until previous_secret_expires_at.
    secret text not null,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    -- When the current run of failed attempts began; null while deliveries succeed.
    failing_since timestamptz,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id)
);
create index webhook_subscriptions_active on webhook_subscriptions (tenant_id) where active;

-- One row per (subscription, event). The body is rebuilt from the outbox event at each attempt,
-- so an erasure that scrubs the event scrubs what is still to be sent.
create table webhook_deliveries (
    tenant_id uuid not null,
    id uuid not null,
    subscription_id uuid not null,
    event_id uuid not null,
    event_type text not null,
    status text not null default 'pending' check (status in ('pending', 'succeeded', 'dead')),
    attempts int not null default 0,
    -- When the next attempt is due. A claim moves it to the end of the claim's lease, so that a
    -- dispatcher that dies mid-attempt only delays the delivery.
    next_attempt_at timestamptz,
    claim_token uuid,
    last_attempt_at timestamptz,
    last_status_code int,
    last_error text,
    last_duration_ms int,
    -- Every attempt: [{"at", "status_code", "duration_ms", "error"}], oldest first.
    attempt_log jsonb not null default '[]'::jsonb,
    created_at timestamptz not null default now(),
    completed_at timestamptz,
    primary key (tenant_id, id),
    unique (tenant_id, subscription_id, event_id),
    foreign key (tenant_id, subscription_id) references webhook_subscriptions (tenant_id, id) on delete cascade
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';

-- Turning a subscription off (a client's PATCH, a 410, a failing period) dead-letters what it still
-- had pending: those can be redelivered once it is on again.
create function webhook_dead_letter_pending() returns trigger
    language plpgsql
    as $$
begin
    update webhook_deliveries
       set status = 'dead', next_attempt_at = null, completed_at = now(),
           last_error = coalesce(last_error, 'the subscription was disabled')
     where tenant_id = new.tenant_id and subscription_id = new.id and status = 'pending';
    return new;
end
$$;
create trigger webhook_subscriptions_disabled
    after update of active on webhook_subscriptions
    for each row when (old.active and not new.active)
    execute function webhook_dead_letter_pending();
create index webhook_deliveries_listing on webhook_deliveries (tenant_id, subscription_id, created_at desc, id desc);

-- Which outbox events still await fan-out. Existing events are history: a new subscription receives
-- what happens after it is created.
alter table outbox_events add column fanned_out_at timestamptz;
update outbox_events set fanned_out_at = occurred_at;
create index outbox_events_pending on outbox_events (seq) where fanned_out_at is null;

do $$
declare
    tenant_table text;
begin
    foreach tenant_table in array array['webhook_subscriptions', 'webhook_deliveries'] loop
        execute format('alter table %I enable row level security', tenant_table);
        execute format(
            'create policy tenant_isolation on %I using (tenant_id = app_tenant_id()) '
            'with check (tenant_id = app_tenant_id())',
            tenant_table
        );
    end loop;
end
$$;

grant select, insert, update, delete on webhook_subscriptions, webhook_deliveries to crm_app;
grant execute on function uuid_v7() to crm_app;

-- Fans out up to p_limit outbox events (oldest first) into deliveries for every active subscription
-- of the event's tenant whose event types match, and marks them fanned out. Safe to run from many
-- dispatchers at once: each takes events the others have not locked. Returns the events handled.
create function webhook_fan_out(p_limit int) returns int
    language plpgsql security definer set search_path = public
    as $$
declare
    handled int;
begin
    with batch as (
        select tenant_id, id, event_type, occurred_at
        from outbox_events
        where fanned_out_at is null
        order by seq
        limit p_limit
        for update skip locked
    ), fanned as (
        insert into webhook_deliveries (tenant_id, id, subscription_id, event_id, event_type, next_attempt_at, created_at)
        select b.tenant_id, uuid_v7(), s.id, b.id, b.event_type, now(), b.occurred_at
        from batch b
        join webhook_subscriptions s on s.tenant_id = b.tenant_id and s.active
        where s.created_at <= b.occurred_at
          and ('*' = any (s.event_types)
               or b.event_type = any (s.event_types)
               or split_part(b.event_type, '.', 1) || '.*' = any (s.event_types))
        on conflict do nothing
    ), marked as (
        update outbox_events o set fanned_out_at = now()
        from batch b
        where o.tenant_id = b.tenant_id and o.id = b.id
        returning 1
    )
    select count(*) into handled from marked;
    return handled;
end
$$;

-- Claims up to p_limit due deliveries for p_lease_seconds: each gets a fresh claim token, one more
-- attempt, and a next_attempt_at at the end of the lease, so no other dispatcher takes it meanwhile.
-- Returns what an attempt needs: the subscription's URL and live secrets, and the event.
create function webhook_claim(p_limit int, p_lease_seconds int)
    returns table (
        tenant_id uuid, delivery_id uuid, claim_token uuid, attempts int,
        subscription_id uuid, url text, active boolean, secrets text[],
        event_id uuid, event_type text, payload jsonb, occurred_at text
    )
    language sql security definer set search_path = public
    as $$
    with due as (
        select d.tenant_id, d.id
        from webhook_deliveries d
        where d.status = 'pending' and d.next_attempt_at <= now()
        order by d.next_attempt_at
        limit p_limit
        for update skip locked
    ), claimed as (
        update webhook_deliveries d
           set claim_token = gen_random_uuid(),
               attempts = d.attempts + 1,
               next_attempt_at = now() + make_interval(secs => p_lease_seconds)
          from due
         where d.tenant_id = due.tenant_id and d.id = due.id
        returning d.tenant_id, d.id, d.claim_token, d.attempts, d.subscription_id, d.event_id
    )
    select c.tenant_id, c.id, c.claim_token, c.attempts,
           s.id, s.url, s.active,
           array_remove(array[s.secret,
                              case when s.previous_secret_expires_at > now() then s.previous_secret end], null),
           e.id, e.event_type, e.payload, rfc3339(e.occurred_at)
    from claimed c
    join webhook_subscriptions s on s.tenant_id = c.tenant_id and s.id = c.subscription_id
    join outbox_events e on e.tenant_id = c.tenant_id and e.id = c.event_id
    $$;

-- Records the attempt of a claimed delivery (ignored when the claim is no longer current: its lease
-- ran out and another dispatcher took the delivery). p_outcome: `succeeded`, `retry` (due again at
-- p_next_attempt_at) or `dead`. A failure starts or continues the subscription's failing period;
-- p_disable ('gone') or a failing period longer than p_disable_after_seconds turns the subscription
-- off (the trigger above dead-letters its pending deliveries) and writes a `webhook.disabled`
-- event and an audit record.
-- Returns whether the subscription was disabled by this attempt.
create function webhook_record_attempt(
    p_tenant uuid, p_delivery uuid, p_claim uuid, p_outcome text, p_status_code int, p_error text,
    p_duration_ms int, p_next_attempt_at timestamptz, p_disable text, p_disable_after_seconds int
) returns boolean
    language plpgsql security definer set search_path = public
    as $$
declare
    subscription uuid;
    failing timestamptz;
    reason text := p_disable;
    disabled jsonb;
begin
    update webhook_deliveries
       set status = case p_outcome when 'retry' then 'pending' else p_outcome end,
           next_attempt_at = case p_outcome when 'retry' then p_next_attempt_at end,
           claim_token = null,
           last_attempt_at = now(),
           last_status_code = p_status_code,
           last_error = p_error,
           last_duration_ms = p_duration_ms,
           attempt_log = attempt_log || jsonb_build_array(jsonb_build_object(
               'at', rfc3339(now()), 'status_code', p_status_code,
               'duration_ms', p_duration_ms, 'error', p_error)),
           completed_at = case when p_outcome = 'retry' then null else now() end
     where tenant_id = p_tenant and id = p_delivery and claim_token = p_claim
    returning subscription_id into subscription;
    if subscription is null then
        return false;
    end if;

    if p_outcome = 'succeeded' then
        update webhook_subscriptions set failing_since = null
         where tenant_id = p_tenant and id = subscription and failing_since is not null;
        return false;
    end if;

    update webhook_subscriptions set failing_since = coalesce(failing_since, now())
     where tenant_id = p_tenant and id = subscription and active
    returning failing_since into failing;
    if failing is null then
        return false;
    end if;
    if reason is null and failing < now() - make_interval(secs => p_disable_after_seconds) then
        reason := 'failing';
    end if;
    if reason is null then
        return false;
    end if;

    update webhook_subscriptions
       set active = false, disabled_reason = reason, version = version + 1, updated_at = now()
     where tenant_id = p_tenant and id = subscription
    returning jsonb_build_object(
        'id', id, 'url', url, 'event_types', to_jsonb(event_types), 'description', description,
        'active', active, 'disabled_reason', disabled_reason, 'version', version,
        'created_at', rfc3339(created_at), 'updated_at', rfc3339(updated_at))
      into disabled;
    insert into audit_log (tenant_id, id, actor, action, entity_type, entity_id, request_id, changes)
    values (p_tenant, uuid_v7(), 'system:webhook-dispatcher', 'disable', 'webhook', subscription,
            'dispatcher:' || p_delivery,
            jsonb_build_array(
                jsonb_build_object('field', 'active', 'old', true, 'new', false),
                jsonb_build_object('field', 'disabled_reason', 'old', null, 'new', reason)));
    insert into outbox_events (tenant_id, id, event_type, entity_type, entity_id, payload, request_id)
    values (p_tenant, uuid_v7(), 'webhook.disabled', 'webhook', subscription, disabled,
            'dispatcher:' || p_delivery);
    return true;
end
$$;

revoke all on function webhook_fan_out(int) from public;
revoke all on function webhook_claim(int, int) from public;
revoke all on function webhook_record_attempt(uuid, uuid, uuid, text, int, text, int, timestamptz, text, int) from public;
grant execute on function webhook_fan_out(int) to crm_app;
grant execute on function webhook_claim(int, int) to crm_app;
grant execute on function webhook_record_attempt(uuid, uuid, uuid, text, int, text, int, timestamptz, text, int) to crm_app;
