-- clv_fits: ReplacingMergeTree(computed_at) ORDER BY (model, as_of), no PARTITION BY, no TTL: the fitted parameters behind each customer_value snapshot (one row per model and snapshot date, a refit of the same snapshot replaces it like its customer_value rows), so a snapshot's predictions can be carried forward in time (P(alive) on a later day) and explained; a handful of rows, read whole.
CREATE TABLE IF NOT EXISTS clv_fits
(
    model                LowCardinality(String) COMMENT 'e.g. bgnbd_gg, as in customer_value',
    as_of                Date COMMENT 'snapshot date of the customer_value rows it produced',
    model_version        LowCardinality(String),
    calibration_end      Date COMMENT 'last day of the calibration window (inclusive)',
    unit                 LowCardinality(String) COMMENT 'time unit of the parameters: week | day',
    currency             LowCardinality(String),
    customers            UInt32 COMMENT 'customers the models were fitted on',
    r                    Float64 COMMENT 'BG/NBD: purchase rate ~ Gamma(r, alpha)',
    alpha                Float64,
    a                    Float64 COMMENT 'BG/NBD: dropout probability ~ Beta(a, b)',
    b                    Float64,
    bgnbd_log_likelihood Float64,
    gg_p                 Float64 COMMENT 'Gamma-Gamma: spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma)',
    gg_q                 Float64,
    gg_gamma             Float64,
    gg_log_likelihood    Float64,
    horizon_months       UInt16,
    discount_rate        Float64 COMMENT 'monthly discount rate d',
    computed_at          DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the newest fit wins'
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (model, as_of)
COMMENT 'fitted CLV model parameters per customer_value snapshot'
