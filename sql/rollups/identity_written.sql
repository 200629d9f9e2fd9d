-- identity_written: the source ids (source, source_key) of the identity rows in the given parts of identities, the parts written since a rollup's watermark (package metrics, rollup_identity.go: what an identity resolution changed).
SELECT DISTINCT source, source_key FROM identities WHERE _part IN {parts:Array(String)}
