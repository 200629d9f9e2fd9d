INSERT INTO users (email, name, role, password_hash, created_at, disabled, updated_at)
VALUES ({email:String}, {name:String}, {role:String}, {hash:String}, {created:DateTime64(3, 'UTC')}, {disabled:Bool}, {updated:DateTime64(3, 'UTC')})
