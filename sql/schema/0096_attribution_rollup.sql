-- rollup_attribution: ReplacingMergeTree(_version, _deleted) ORDER BY (level, slot, dim, channel), PARTITION BY toYYYYMM(slot), no TTL: the attribution view's order rows (0084) computed once, when the orders or their touchpoints land (package metrics keeps it: sql/rollups/attribution_build.sql), for the lookback and half-life it is built with (the rollups table's spec says which), at both levels, every model a pair of columns: revenue and gross profit credited to each dim and channel, summed per 30-minute UTC slot of the order time (any whole- or half-hour report zone puts a slot in one local day). A slot's rows are rewritten whole when its orders or their touchpoints change (a newer _version replaces them; a dim the slot no longer has gets a _deleted row), so readers take FINAL; a larger change recomputes the orders' month and replaces its partition. Sums of Float64: the sums of slots equal the raw sums to rounding.
CREATE TABLE IF NOT EXISTS rollup_attribution
(
    slot                     DateTime('UTC') COMMENT '30-minute UTC slot of the order time',
    level                    LowCardinality(String) COMMENT 'channel or campaign',
    dim                      String COMMENT 'the channel, or channel / campaign',
    channel                  LowCardinality(String) COMMENT 'the channel of the touch',
    revenue_first_touch      Float64,
    revenue_last_touch       Float64,
    revenue_linear           Float64,
    revenue_u_shaped         Float64,
    revenue_w_shaped         Float64,
    revenue_time_decay       Float64,
    gross_profit_first_touch Float64,
    gross_profit_last_touch  Float64,
    gross_profit_linear      Float64,
    gross_profit_u_shaped    Float64,
    gross_profit_w_shaped    Float64,
    gross_profit_time_decay  Float64,
    _version                 UInt64 COMMENT 'the upkeep that wrote the row: the newest wins',
    _deleted                 UInt8 COMMENT '1: the slot no longer has this dim and channel'
)
ENGINE = ReplacingMergeTree(_version, _deleted)
PARTITION BY toYYYYMM(slot)
ORDER BY (level, slot, dim, channel)
COMMENT 'attribution shares per order slot, model and level, computed as orders and touchpoints land'
