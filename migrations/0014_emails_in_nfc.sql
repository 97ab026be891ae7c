-- Email addresses are kept in Unicode NFC, and so are their uniqueness keys (the application
-- normalises every address it writes from now on): `jose` + a combining acute accent and `josé`
-- are one address. Addresses stored before are normalised here. An address whose normalised key
-- another live contact of its tenant already has is left as it was (two contacts that were always
-- the same person; duplicate detection finds them), and counted in a notice.

do $$
declare
    left_as_is int;
begin
    update contact_emails e
       set address = normalize(e.address, NFC),
           address_key = normalize(e.address_key, NFC)
     where (e.address is not nfc normalized or e.address_key is not nfc normalized)
       and not exists (
           select 1 from contact_emails other
            where other.tenant_id = e.tenant_id
              and other.live and e.live
              and other.address_key = normalize(e.address_key, NFC)
              and (other.contact_id, other.position) <> (e.contact_id, e.position));
    select count(*) into left_as_is
      from contact_emails where address_key is not nfc normalized;
    if left_as_is > 0 then
        raise notice '% email address(es) not normalised: another live contact has the normalised address', left_as_is;
    end if;
end
$$;
