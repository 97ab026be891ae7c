-- Whether some live contact of the transaction's tenant has a search document that holds `word`,
-- whole or as the start of a longer word: how a search decides which of `q`'s words are typos, to
-- be matched by trigrams. As one `exists (... document @@ 'word:*')`, PostgreSQL, which has no
-- statistics for a word no one has (a typo), reads documents one by one until one matches: every
-- document of every tenant, a second on a million contacts. So it is asked in two steps, each
-- planned with the word's value (`execute ... using`):
-- 1. the whole word: a common one is met among the first documents read, a rare or absent one is
--    looked up in the GIN index;
-- 2. only if no document holds it whole, the word as a prefix (a word still being typed), through
--    the index alone (`enable_seqscan` off for that one statement): a millisecond for a typo, a
--    few for a prefix of a common word.
-- Run as the caller, through the tenant's view.
create function contact_search_holds(word text) returns boolean
    language plpgsql
    as $$
declare
    held boolean;
    seqscan text := current_setting('enable_seqscan');
begin
    execute 'select exists (select 1 from tenant_contact_search s
                            where s.live and s.document @@ to_tsquery(''simple'', unaccent($1)))'
        using word into held;
    if held then
        return true;
    end if;
    perform set_config('enable_seqscan', 'off', true);
    execute 'select exists (select 1 from tenant_contact_search s
                            where s.live and s.document @@ to_tsquery(''simple'', unaccent($1) || '':*''))'
        using word into held;
    perform set_config('enable_seqscan', seqscan, true);
    return held;
end
$$;

-- `q`'s words as the search compares them: a tsquery (`search_tsquery('ada:*')`), and text
-- lower-cased and unaccented for trigrams (`search_folded('Zoë')`). Declared immutable (unaccent is
-- stable only because its dictionary could be changed, which this schema never does) so that with
-- its value known, PostgreSQL computes each once while planning and estimates from the value how
-- many documents a word matches: a common first name then narrows a search through the index
-- together with a rare word, instead of every document holding the common one being compared by
-- trigrams. Used in statements only, never in an index.
create function search_tsquery(query text) returns tsquery
    language sql immutable parallel safe
    as $$ select to_tsquery('simple'::regconfig, unaccent(query)) $$;
create function search_folded(value text) returns text
    language sql immutable parallel safe
    as $$ select lower(unaccent(value)) $$;

-- A typo'd word of 8 characters or more (an email's `hamilton567314`) is compared with whole words
-- (strict word similarity, `<<%`) at 0.55: a wrong, missing or extra character keeps about two
-- thirds of a 10-character word's trigrams, a transposition in a 12-character word 0.56, while a
-- word that merely starts the same (`hamilton123456`) scores 0.5 or less; word similarity at 0.5
-- accepted every `hamilton…` of the tenant, tens of thousands of candidates each compared. Set where
-- the migrating role owns the database, as for the word similarity threshold (migration 0026).
do $$
begin
    execute format('alter database %I set pg_trgm.strict_word_similarity_threshold = 0.55', current_database());
exception when insufficient_privilege then
    raise notice 'set pg_trgm.strict_word_similarity_threshold = 0.55 for this database (alter database % set ...)',
        current_database();
end
$$;

-- One GIN index over the document and the trigram names, in place of one over each: a `q` with a
-- word found as typed and a word with a typo (`jean vanrossum327813`) is then one index scan that
-- intersects both, where PostgreSQL, which estimates every trigram condition at a hundred rows,
-- read all of one word's candidates (33,000 `vanrossum…` or `jean…`) from the table to test the
-- other (0.1 to 0.35 s on a million contacts; 0.4 to 31 ms with this index). A multicolumn GIN
-- index serves a condition on either column alone as well as its single-column one did, and is
-- smaller than the two (299 MB against 351 MB there).
create index contact_search_words on contact_search using gin (document, names gin_trgm_ops) where live;
drop index contact_search_document;
drop index contact_search_names;
