SELECT at, actor, action, target, detail, ip, count() OVER () AS total
FROM audit_log
WHERE at >= {from:DateTime64(3, 'UTC')} AND at < {to:DateTime64(3, 'UTC')}
  AND ({actor:String} = '' OR positionCaseInsensitive(actor, {actor:String}) > 0)
  AND ({action:String} = '' OR action = {action:String})
  AND ({target:String} = '' OR positionCaseInsensitive(target, {target:String}) > 0)
ORDER BY at DESC, actor
LIMIT {limit:UInt32} OFFSET {offset:UInt64}
