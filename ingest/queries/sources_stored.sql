-- Rows stored per fact table (as entity) and source, deduplicated like the metrics read them (FINAL), with the entity of the run that wrote the table's newest row: a lines-mode orders run (online_retail, shopify_orders) also writes order_lines and refunds. One branch per canonical entity; ingest tests check the list is complete.
SELECT t.entity AS entity, t.source AS source, t.stored AS stored, r.entity AS run_entity
FROM
(
    SELECT 'customers' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM customers FINAL GROUP BY source
    UNION ALL
    SELECT 'orders' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM orders FINAL GROUP BY source
    UNION ALL
    SELECT 'order_lines' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM order_lines FINAL GROUP BY source
    UNION ALL
    SELECT 'refunds' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM refunds FINAL GROUP BY source
    UNION ALL
    SELECT 'marketing_spend' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM marketing_spend FINAL GROUP BY source
    UNION ALL
    SELECT 'touchpoints' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM touchpoints FINAL GROUP BY source
    UNION ALL
    SELECT 'tickets' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM tickets FINAL GROUP BY source
    UNION ALL
    SELECT 'survey_responses' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM survey_responses FINAL GROUP BY source
    UNION ALL
    SELECT 'consents' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM consents FINAL GROUP BY source
    UNION ALL
    SELECT 'rewards' AS entity, toString(source) AS source, count() AS stored, argMax(ingest_run_id, loaded_at) AS last_run FROM rewards FINAL GROUP BY source
) AS t
LEFT JOIN (SELECT run_id, toString(entity) AS entity FROM ingest_runs FINAL) AS r ON r.run_id = t.last_run
ORDER BY source, entity
