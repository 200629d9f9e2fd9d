-- marketing_spend: ReplacingMergeTree(loaded_at) ORDER BY (source, date, channel, campaign), PARTITION BY toYYYYMM(date), no TTL: one row per source, day, channel and campaign (campaign '' for channel-level cost), so re-importing an ad platform export replaces the day's figures (platforms restate recent days), month partitions serve CAC/ROAS period queries.
CREATE TABLE IF NOT EXISTS marketing_spend
(
    date             Date COMMENT 'day the cost was incurred (the platform''s account day)',
    channel          LowCardinality(String),
    campaign         LowCardinality(String) DEFAULT '' COMMENT 'empty for cost not tied to a campaign',
    spend            Decimal(18, 4) COMMENT 'cost in currency',
    currency         LowCardinality(String),
    impressions      UInt64 DEFAULT 0,
    clicks           UInt64 DEFAULT 0,
    conversions      Float64 DEFAULT 0 COMMENT 'as reported by the ad platform (may be fractional), converge attribution uses touchpoints and orders',
    conversion_value Decimal(18, 4) DEFAULT 0 COMMENT 'as reported by the ad platform, in currency',
    source           LowCardinality(String),
    ingest_run_id    String DEFAULT '',
    loaded_at        DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'version: the latest load wins'
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(date)
ORDER BY (source, date, channel, campaign)
COMMENT 'marketing cost per day, channel and campaign'
