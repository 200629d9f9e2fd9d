-- Orders around the turn of 2025 in Europe/Berlin (UTC+1 in winter), EUR, source shop. The
-- finance user asking for 2025 with to=2025-12-31 must get 1,000 + 100 + 10 = 1,110:
--   y1 2025-01-01 00:30 Berlin (2024-12-31 23:30 UTC)  1000  in 2025 in Berlin, not in UTC
--   y2 2025-06-15 12:00 Berlin (10:00 UTC)              100
--   y3 2025-12-31 23:30 Berlin (22:30 UTC)               10  the last order of 31 December
--   y4 2026-01-01 00:30 Berlin (2025-12-31 23:30 UTC)     1  in 2026 in Berlin, in 2025 in UTC
-- Customers c1 (y1, y3) and c2 (y2, y4).
INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, status, channel, country, source) VALUES
  ('y1','c1','2024-12-31 23:30:00', 1000,'EUR',600,'completed','ads','DE','shop'),
  ('y2','c2','2025-06-15 10:00:00',  100,'EUR',60, 'completed','email','DE','shop'),
  ('y3','c1','2025-12-31 22:30:00',   10,'EUR',6,  'completed','ads','DE','shop'),
  ('y4','c2','2025-12-31 23:30:00',    1,'EUR',1,  'completed','email','DE','shop');
INSERT INTO identities (source, source_key, customer_id, rule) VALUES
  ('shop','c1','c1','source_id'), ('shop','c2','c2','source_id');
