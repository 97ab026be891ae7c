-- An Idempotency-Key claim names the request that holds it. Releasing or recording the claim
-- checks the owner, so a request can release its own claim even when it cannot tell whether the
-- claim committed (the connection was lost at commit), without ever releasing another request's.
alter table idempotency_keys add column claim_token uuid;
