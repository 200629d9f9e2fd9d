-- customer_value: ReplacingMergeTree(computed_at) ORDER BY (model, as_of, customer_id), PARTITION BY toYYYYMM(as_of), no TTL: one row per model, snapshot date and customer, recomputing a snapshot replaces it (newest computed_at wins), snapshots are read per model and date, and old ones are dropped by partition.
CREATE TABLE IF NOT EXISTS customer_value
(
    customer_id        String,
    as_of              Date COMMENT 'snapshot date the prediction is for',
    model              LowCardinality(String) COMMENT 'e.g. bgnbd_gg',
    model_version      LowCardinality(String),
    calibration_end    Date COMMENT 'last day of the calibration window (inclusive)',
    unit               LowCardinality(String) COMMENT 'time unit of t_x, T and the fit: week | day',
    x                  Float64 COMMENT 'repeat purchases (same-day purchases merged, first excluded)',
    t_x                Float64 COMMENT 'time of the last purchase since the first, in unit',
    T                  Float64 COMMENT 'time from the first purchase to calibration_end, in unit',
    monetary_value     Float64 DEFAULT 0 COMMENT 'mean value of repeat purchases (Gamma-Gamma z bar), in currency, 0 when x = 0',
    expected_purchases Float64 COMMENT 'expected purchases over the horizon',
    p_alive            Float64 COMMENT 'P(alive) at calibration_end',
    expected_spend     Float64 COMMENT 'expected spend per purchase (Gamma-Gamma), in currency',
    clv                Float64 COMMENT 'discounted expected value over the horizon, in currency',
    currency           LowCardinality(String),
    horizon_months     UInt16,
    discount_rate      Float64 COMMENT 'discount rate d in CLV = sum E[M] (E[X(t_i)] - E[X(t_i-1)]) / (1+d)^i',
    computed_at        DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest computation wins'
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (model, as_of, customer_id)
COMMENT 'predictive CLV model output per customer and snapshot date'
