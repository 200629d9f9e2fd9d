INSERT INTO audit_log (at, actor, action, target, detail, ip)
VALUES ({at:DateTime64(3, 'UTC')}, {actor:String}, {action:String}, {target:String}, {detail:String}, {ip:String})
