-- name: roas
-- title: ROAS
-- description: ROAS, kpi-definitions.md (Google Ads conversions_value_per_cost): revenue attributed to ads / ad cost, per bucket (of the order time, and of the spend day) and per channel (level=channel) or channel / campaign (level=campaign); the series without a dim is all channels: revenue attributed to paid channels (those with spend) / all spend. Totals are over the whole range (ratio of sums). Attribution (HubSpot models, kpi-definitions.md; the attribution view, sql/schema/0050_attribution.sql) shares each order's revenue among the customer's touchpoints in the lookback_days before it: first_touch, last_touch, linear, u_shaped (40/20/40; 50/50 with two touches), w_shaped (first, lead = first signup, last share 90 % equally, the others 10 %; all 100 % when there are no others), time_decay (weight 2^(−age/half_life_days)). Orders without a touchpoint in the window are not attributed. Revenue gross of refunds. No value where there is no cost.
-- owner: CMO
-- unit: ratio
-- format: 0.00
-- polarity: higher_is_better
-- kind: custom
-- param: model String = last_touch | first_touch, last_touch, linear, u_shaped, w_shaped, time_decay
-- param: level String = channel | channel, campaign
-- param: lookback_days Int64 = 30 | 1..365
-- param: half_life_days Float64 = 7 | 0.1..365
SELECT bucket, dim, sumIf(revenue, paid) / sum(spend) AS value
FROM attribution(from = {from:DateTime64(3, 'UTC')}, to = {to:DateTime64(3, 'UTC')}, tz = {tz:String}, grain = {grain:String},
                 week_mode = {week_mode:UInt8}, fy_shift = {fy_shift:Int32}, default_margin = {default_margin:Float64},
                 model = {model:String}, level = {level:String}, lookback_days = {lookback_days:Int64}, half_life_days = {half_life_days:Float64})
GROUP BY GROUPING SETS ((bucket, dim), (dim), (bucket), ())
ORDER BY bucket, dim
SETTINGS group_by_use_nulls = 1
