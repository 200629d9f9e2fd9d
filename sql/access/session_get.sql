SELECT email, method, created_at, last_seen, revoked_at
FROM sessions FINAL
WHERE id_hash = {id_hash:String}
