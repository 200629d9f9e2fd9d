-- attribution_rollup: the attribution view (0084) with the same parameters and columns, its order rows read from rollup_attribution (the newest version of each slot's rows, FINAL per partition: a slot never spans two) instead of computed from every touchpoint; spend and the paid flag as there, from marketing_spend. Package metrics reads it in place of attribution only while the rollup is current and built for the query's lookback_days, half_life_days and default_margin, and the range and buckets start on slot boundaries; lookback_days, half_life_days and default_margin are accepted and not read.
CREATE OR REPLACE VIEW attribution_rollup AS
WITH
    toDate({from:DateTime64(3, 'UTC')}, {tz:String}) AS from_day,
    toDate({to:DateTime64(3, 'UTC')}, {tz:String}) AS to_day,
    rows AS (
        SELECT toDate(slot, {tz:String}) AS d, toString(channel) AS channel, dim,
               multiIf({model:String} = 'first_touch', revenue_first_touch, {model:String} = 'last_touch', revenue_last_touch,
                       {model:String} = 'linear', revenue_linear, {model:String} = 'u_shaped', revenue_u_shaped,
                       {model:String} = 'w_shaped', revenue_w_shaped, revenue_time_decay) AS revenue,
               multiIf({model:String} = 'first_touch', gross_profit_first_touch, {model:String} = 'last_touch', gross_profit_last_touch,
                       {model:String} = 'linear', gross_profit_linear, {model:String} = 'u_shaped', gross_profit_u_shaped,
                       {model:String} = 'w_shaped', gross_profit_w_shaped, gross_profit_time_decay) AS gross_profit,
               0. AS spend
        FROM rollup_attribution FINAL
        WHERE level = {level:String} AND slot >= {from:DateTime64(3, 'UTC')} AND slot < {to:DateTime64(3, 'UTC')} AND _deleted = 0
        UNION ALL
        SELECT date, channel, if({level:String} = 'channel', channel, concat(channel, ' / ', campaign)), 0., 0., toFloat64(spend)
        FROM marketing_spend FINAL
        WHERE date >= from_day AND date < to_day
    )
SELECT multiIf({grain:String} = 'day', d, {grain:String} = 'week', toStartOfWeek(d, {week_mode:UInt8}),
               {grain:String} = 'month', toStartOfMonth(d),
               {grain:String} = 'quarter', addMonths(toStartOfQuarter(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32}),
               addMonths(toStartOfYear(addMonths(d, -{fy_shift:Int32})), {fy_shift:Int32})) AS bucket,
       dim, channel, revenue, gross_profit, spend,
       channel IN (SELECT channel FROM marketing_spend FINAL WHERE spend > 0) AS paid
FROM rows
SETTINGS do_not_merge_across_partitions_select_final = 1
