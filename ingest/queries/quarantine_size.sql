-- Quarantined records per entity (the Prometheus gauge converge_quarantine_records), every entity that has any.
SELECT toString(entity) AS entity, count() AS records
FROM quarantine
GROUP BY entity
ORDER BY entity
