-- How many quarantined records match the filters of quarantine.sql.
SELECT count()
FROM quarantine
WHERE ({run:String} = '' OR run_id = {run:String})
  AND ({source:String} = '' OR source = {source:String})
  AND ({entity:String} = '' OR entity = {entity:String})
  AND ({code:String} = '' OR code = {code:String})
