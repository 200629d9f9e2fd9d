INSERT INTO sessions (id_hash, email, method, ip, user_agent, created_at, last_seen, revoked_at, updated_at)
SELECT id_hash, email, method, ip, user_agent, created_at, last_seen, {at:DateTime64(3, 'UTC')}, {at:DateTime64(3, 'UTC')}
FROM sessions FINAL
WHERE email = {email:String} AND revoked_at IS NULL
