-- Quarantined records per reason code under the run, source and entity filters (not the code filter, so every code can be chosen), the most frequent first, with one reason as an example.
SELECT toString(code) AS code, count() AS records, any(reason) AS example
FROM quarantine
WHERE ({run:String} = '' OR run_id = {run:String})
  AND ({source:String} = '' OR source = {source:String})
  AND ({entity:String} = '' OR entity = {entity:String})
GROUP BY code
ORDER BY records DESC, code
