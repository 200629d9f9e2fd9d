INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, status, channel, country, source) VALUES
  ('p1','c1','2025-11-10 12:00:00', 100,'EUR',60,  'completed','ads','DE','shop'),
  ('p2','c2','2025-12-05 12:00:00',  60,'EUR',NULL,'completed','email','DE','shop'),
  ('p3','c1','2025-12-20 12:00:00',  50,'EUR',20,  'completed','ads','DE','shop'),
  ('o1','c1','2026-01-05 10:00:00', 100,'EUR',60,  'completed','ads','DE','shop'),
  ('o2','c1','2026-01-05 15:00:00',  50,'EUR',NULL,'completed','ads','DE','shop'),
  ('o3','c2','2026-01-20 12:00:00', 200,'EUR',120, 'completed','organic','FR','shop'),
  ('o4','c1','2026-02-10 12:00:00',  80,'EUR',40,  'completed','email','DE','shop'),
  ('o5','c3','2026-02-15 12:00:00',3000,'EUR',2000,'completed','ads','DE','shop'),
  ('o6','c2','2026-02-28 23:30:00',  40,'EUR',20,  'completed','organic','FR','shop'),
  ('o7','c4','2026-03-10 12:00:00', 500,'EUR',300, 'cancelled','ads','DE','shop'),
  ('o8','',  '2026-03-12 12:00:00',  20,'EUR',10,  'completed','+promo, "spring"','DE','shop'),
  ('o9','c3','2026-03-20 12:00:00',  60,'EUR',30,  'completed','ads','DE','shop')
