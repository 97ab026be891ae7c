-- No JIT compilation for this database. The API's statements are short index reads whose plans
-- are kept per connection; a generic plan's cost can pass `jit_above_cost` (100,000 by default)
-- when it cannot know a value such as a page's limit, and compiling it then costs 10-15 ms on every
-- execution, ten times the read itself (measured on the contacts list of a 1,000,000-contact
-- tenant). Reports that would gain from JIT are not this database's work. The migrating role
-- usually owns the database (`crm migrate --create-database` creates it); where it does not, the
-- setting is left to the operator (`alter database ... set jit = off`) and the migration says so.
-- It applies to connections opened after it.

do $$
begin
    execute format('alter database %I set jit = off', current_database());
exception when insufficient_privilege then
    raise notice 'jit stays as it is: only the database owner may set it (alter database % set jit = off)',
        current_database();
end
$$;
