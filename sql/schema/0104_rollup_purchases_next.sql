-- rollup_purchases: ReplacingMergeTree(_version, _deleted) ORDER BY (customer_id, slot), PARTITION BY toYYYYMM(slot), no TTL: the purchases view's rows (0105) kept as orders land (package metrics: sql/rollups/purchases_build.sql). Its readers group by customer (churn's order days, cohorts' first purchase) or read each row with its next_at (churn): a customer's rows lie together, and a range reads the months it spans. A slot's rows are rewritten whole when its orders change (a newer _version replaces them; a customer the slot no longer has gets a _deleted row), and a row whose next purchase changed gets a newer version (purchases_next), so readers take FINAL per partition; a larger change recomputes the orders' month and replaces its partition.
CREATE TABLE IF NOT EXISTS rollup_purchases
(
    slot        DateTime('UTC') COMMENT '15-minute UTC slot of the order time',
    customer_id String COMMENT 'canonical customer',
    first_at    DateTime64(3, 'UTC') COMMENT 'the first order time in the slot',
    last_at     DateTime64(3, 'UTC') COMMENT 'the last order time in the slot',
    orders      UInt64 COMMENT 'non-cancelled orders in the slot',
    next_at     DateTime64(3, 'UTC') COMMENT 'first_at of the customer''s next slot with a purchase; 2199-12-31 when none',
    _version    UInt64 COMMENT 'the upkeep that wrote the row: the newest wins',
    _deleted    UInt8 COMMENT '1: the slot no longer has this customer'
)
ENGINE = ReplacingMergeTree(_version, _deleted)
PARTITION BY toYYYYMM(slot)
ORDER BY (customer_id, slot)
COMMENT 'purchases per customer and 15-minute slot, kept as orders land'
