SELECT count() FROM users FINAL
