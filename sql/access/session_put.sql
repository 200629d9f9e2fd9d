INSERT INTO sessions (id_hash, email, method, ip, user_agent, created_at, last_seen, revoked_at, updated_at)
VALUES ({id_hash:String}, {email:String}, {method:String}, {ip:String}, {user_agent:String}, {created:DateTime64(3, 'UTC')},
        {last_seen:DateTime64(3, 'UTC')}, {revoked:Nullable(DateTime64(3, 'UTC'))}, {updated:DateTime64(3, 'UTC')})
