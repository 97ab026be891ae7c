-- Bounds on what one session of the application role can hold, for this database.
--
-- On Spin the host pools connections and does not roll back a transaction left open by a request
-- that trapped or was cancelled mid-transaction: the connection goes back to the pool with it. The
-- application detects such a transaction when it next uses the connection and rolls it back (see
-- shared/platform/src/db/spin.rs); until then the server itself ends a session idle inside a
-- transaction after 5 seconds, releasing its locks and discarding its writes. Statements and lock
-- waits are bounded too, so that no request can hold a connection for long.
--
-- Role settings apply at connection start and survive the pool's `RESET ALL`, which resets to them.
do $$
begin
    execute format('alter role crm_app in database %I set idle_in_transaction_session_timeout = %L',
                   current_database(), '5s');
    execute format('alter role crm_app in database %I set statement_timeout = %L',
                   current_database(), '30s');
    execute format('alter role crm_app in database %I set lock_timeout = %L',
                   current_database(), '10s');
end $$;
