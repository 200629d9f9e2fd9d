SELECT email, name, role, password_hash, disabled, created_at, updated_at
FROM users FINAL
ORDER BY email
