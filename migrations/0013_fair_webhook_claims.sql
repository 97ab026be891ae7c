-- Fair claiming: a claim takes due deliveries tenant by tenant in turn (and, within a tenant,
-- subscription by subscription), instead of the oldest first across everyone. One tenant's backlog
-- of deliveries to slow receivers then takes at most its share of each claim, and another tenant's
-- delivery is sent within a round of attempts, not after the whole backlog.

create index webhook_deliveries_pending_by_tenant
    on webhook_deliveries (tenant_id, next_attempt_at) where status = 'pending';

create or replace function webhook_claim(p_limit int, p_lease_seconds int)
    returns table (
        tenant_id uuid, delivery_id uuid, claim_token uuid, attempts int,
        subscription_id uuid, url text, active boolean, secrets text[],
        event_id uuid, event_type text, payload jsonb, occurred_at text
    )
    language sql security definer set search_path = public
    as $$
    with recursive tenants as (
        -- The tenants with pending deliveries, one index probe each (a loose index scan).
        (select d.tenant_id from webhook_deliveries d
          where d.status = 'pending' order by d.tenant_id limit 1)
        union all
        select (select d.tenant_id from webhook_deliveries d
                 where d.status = 'pending' and d.tenant_id > t.tenant_id
                 order by d.tenant_id limit 1)
          from tenants t
         where t.tenant_id is not null
    ), candidates as (
        -- Each tenant's oldest due deliveries, numbered in turn: every subscription's first before
        -- any subscription's second.
        select c.tenant_id, c.id, c.next_attempt_at,
               row_number() over (partition by c.tenant_id
                                  order by c.subscription_turn, c.next_attempt_at) as turn
        from tenants t
        cross join lateral (
            select o.tenant_id, o.id, o.next_attempt_at,
                   row_number() over (partition by o.subscription_id
                                      order by o.next_attempt_at) as subscription_turn
            from (select d.tenant_id, d.id, d.subscription_id, d.next_attempt_at
                    from webhook_deliveries d
                   where d.tenant_id = t.tenant_id and d.status = 'pending'
                     and d.next_attempt_at <= now()
                   order by d.next_attempt_at
                   limit p_limit) o
        ) c
        where t.tenant_id is not null
    ), picked as (
        select p.tenant_id, p.id from candidates p order by p.turn, p.next_attempt_at limit p_limit
    ), due as (
        select d.tenant_id, d.id
        from webhook_deliveries d
        join picked p on p.tenant_id = d.tenant_id and p.id = d.id
        where d.status = 'pending' and d.next_attempt_at <= now()
        for update of d skip locked
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
