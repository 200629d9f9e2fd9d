-- order_lines: ReplacingMergeTree(loaded_at) ORDER BY (source, order_id, line_no), PARTITION BY toYYYYMM(ordered_at), no TTL: line_no is the line's position within its order, so identical lines of one invoice (Online Retail has them) stay separate rows while a re-load of the same file replaces them, partitioned like orders (ordered_at must be stable per order).
CREATE TABLE IF NOT EXISTS order_lines
(
    order_id      String,
    line_no       UInt32 COMMENT 'position of the line within the order, from 1, in source order',
    sku           String DEFAULT '',
    description   String DEFAULT '',
    quantity      Int64 COMMENT 'negative for a returned line',
    unit_price    Decimal(18, 4),
    amount        Decimal(18, 4) COMMENT 'quantity x unit_price, net of line discounts, in currency',
    currency      LowCardinality(String),
    ordered_at    DateTime64(3, 'UTC'),
    customer_id   String DEFAULT '' COMMENT 'canonical customer id, empty for anonymous',
    source        LowCardinality(String),
    ingest_run_id String DEFAULT '',
    loaded_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(ordered_at)
ORDER BY (source, order_id, line_no)
COMMENT 'order lines (products sold)'
