-- What the sign-in limiter (access/limit.go) decides one attempt by, for the account {email} and the address {ip}:
-- the failures of the account from this address since its last sign-in from there, and the latest;
-- the failures of the account from any address, and the latest (since {since}, the failure memory);
-- the failures on accounts that do not exist from this address within the window ({window_since}),
-- and the {address_limit}-th newest of them (the limit lifts when it leaves the window; 1970 when there are fewer);
-- the last sign-in of the account from this address since {known_since} (1970: none).
WITH (
    SELECT max(at) FROM login_attempts
    WHERE email = {email:String} AND ip = {ip:String} AND ok AND at >= {known_since:DateTime64(3, 'UTC')}
) AS pair_ok
SELECT
    countIf(email = {email:String} AND ip = {ip:String} AND at > pair_ok) AS pair_failures,
    maxIf(at, email = {email:String} AND ip = {ip:String} AND at > pair_ok) AS pair_last,
    countIf(email = {email:String}) AS account_failures,
    maxIf(at, email = {email:String}) AS account_last,
    countIf(ip = {ip:String} AND NOT known AND at >= {window_since:DateTime64(3, 'UTC')}) AS address_failures,
    arrayElement(arrayReverseSort(groupArrayIf(at, ip = {ip:String} AND NOT known AND at >= {window_since:DateTime64(3, 'UTC')})),
                 {address_limit:UInt32}) AS address_kth,
    pair_ok
FROM login_attempts
WHERE NOT ok AND at >= {since:DateTime64(3, 'UTC')} AND (email = {email:String} OR ip = {ip:String})
