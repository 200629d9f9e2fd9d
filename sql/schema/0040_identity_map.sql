-- identity_map: a view, no storage: the source ids that resolve to ANOTHER id (source, source_key → canonical), from identities deduplicated with FINAL (the newest match wins). An id absent from it is its own canonical id, so the *_resolved views join only the remapped ids (in the large demo 587k of 1.6M identities) and no longer aggregate identities on every query.
CREATE VIEW IF NOT EXISTS identity_map AS
SELECT source, source_key, customer_id AS canonical
FROM identities FINAL
WHERE customer_id != source_key
