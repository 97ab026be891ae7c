-- Idempotency keys belong to a principal: the stored key is the principal's hash (16 hex digits and
-- a colon) before the client's key of up to 255 characters.
alter table idempotency_keys drop constraint idempotency_keys_key_check;
alter table idempotency_keys add constraint idempotency_keys_key_length
    check (length(key) between 1 and 272);
