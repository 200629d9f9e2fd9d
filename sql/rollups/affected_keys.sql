-- affected_keys: the distinct values of a key column of a fact table in the given parts (package metrics: the rows of a keyed rollup to recompute, when the model does not resolve identities).
SELECT DISTINCT toString({key:Identifier}) AS k FROM {table:Identifier} WHERE _part IN {parts:Array(String)}
