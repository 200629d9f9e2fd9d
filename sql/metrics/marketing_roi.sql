-- name: marketing_roi
-- title: Marketing ROI
-- description: Marketing ROI, kpi-definitions.md: (attributed gross profit − cost) / cost, per bucket and channel (level=channel) or channel / campaign (level=campaign), as a ratio (0.5 = 50 %); the series without a dim is all channels (gross profit attributed to paid channels). Gross profit = revenue − cost of goods (orders.cost, or the margin % setting (report.default_margin, default 30 %) when unknown, as cogs); attribution models, lookback, buckets and whole-range totals as in roas.
-- owner: CMO
-- unit: ratio
-- format: 0.00
-- polarity: higher_is_better
-- kind: custom
-- param: model String = last_touch | first_touch, last_touch, linear, u_shaped, w_shaped, time_decay
-- param: level String = channel | channel, campaign
-- param: lookback_days Int64 = 30 | 1..365
-- param: half_life_days Float64 = 7 | 0.1..365
SELECT bucket, dim, (sumIf(gross_profit, paid) - sum(spend)) / sum(spend) AS value
FROM attribution(from = {from:DateTime64(3, 'UTC')}, to = {to:DateTime64(3, 'UTC')}, tz = {tz:String}, grain = {grain:String},
                 week_mode = {week_mode:UInt8}, fy_shift = {fy_shift:Int32}, default_margin = {default_margin:Float64},
                 model = {model:String}, level = {level:String}, lookback_days = {lookback_days:Int64}, half_life_days = {half_life_days:Float64})
GROUP BY GROUPING SETS ((bucket, dim), (dim), (bucket), ())
ORDER BY bucket, dim
SETTINGS group_by_use_nulls = 1
