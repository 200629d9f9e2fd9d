INSERT INTO login_attempts (at, email, ip, ok, known)
VALUES ({at:DateTime64(3, 'UTC')}, {email:String}, {ip:String}, {ok:Bool}, {known:Bool})
