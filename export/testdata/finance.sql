INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, refund, status, channel, campaign, country, source) VALUES
  ('h1','c1','2025-04-10 12:00:00', 100,'EUR',60,  0,'completed','ads','spring','DE','shop'),
  ('h2','c2','2025-05-20 12:00:00',  90,'EUR',45,  0,'completed','email','newsletter','DE','shop'),
  ('h3','c3','2025-12-05 12:00:00', 120,'EUR',NULL,0,'completed','organic','','FR','shop'),
  ('h4','c4','2026-04-10 12:00:00', 250,'EUR',150, 0,'completed','ads','spring','DE','shop'),
  ('m1','c1','2026-05-04 10:00:00', 200,'EUR',120, 0,'completed','ads','spring','DE','shop'),
  ('m2','c5','2026-05-05 12:00:00', 100,'EUR',50,  0,'completed','ads','spring','DE','shop'),
  ('m3','c6','2026-05-06 12:00:00',  80,'EUR',NULL,0,'completed','email','newsletter','DE','shop'),
  ('m4','c7','2026-05-10 12:00:00', 150,'EUR',90, 10,'completed','organic','','FR','shop'),
  ('m5','c5','2026-05-20 12:00:00',  60,'EUR',30,  0,'completed','email','newsletter','DE','shop'),
  ('m6','',  '2026-05-15 12:00:00',  40,'EUR',20,  0,'completed','','','DE','shop'),
  ('m7','c8','2026-05-31 22:30:00', 500,'EUR',300, 0,'completed','ads','spring','DE','shop'),
  ('m8','c9','2026-04-30 22:30:00',  70,'EUR',35,  0,'completed','email','newsletter','DE','shop'),
  ('m9','c10','2026-05-12 12:00:00',300,'EUR',200, 0,'cancelled','ads','spring','DE','shop');
INSERT INTO refunds (refund_id, order_id, customer_id, refunded_at, amount, currency, source) VALUES
  ('r1','m2','c5','2026-05-15 12:00:00',20,'EUR','shop'),
  ('r2','x9','',  '2026-05-16 12:00:00', 5,'EUR','shop');
INSERT INTO marketing_spend (date, channel, campaign, spend, currency, source) VALUES
  ('2026-04-01','ads','spring',200,'EUR','ads'),
  ('2026-05-01','ads','spring',300,'EUR','ads'),
  ('2026-05-20','ads','spring',100,'EUR','ads'),
  ('2026-05-03','email','newsletter',50,'EUR','esp');
INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, campaign, kind, source) VALUES
  ('t1','c1','2026-05-03 12:00:00','ads','spring','click','web'),
  ('t2','c5','2026-05-04 12:00:00','ads','spring','click','web'),
  ('t3','c5','2026-05-19 12:00:00','email','newsletter','open','web'),
  ('t4','c6','2026-05-05 12:00:00','email','newsletter','open','web'),
  ('t5','c7','2026-05-09 12:00:00','organic','','visit','web');
INSERT INTO customer_value (customer_id, as_of, model, model_version, calibration_end, unit, x, t_x, T, expected_purchases, p_alive, expected_spend, clv, currency, horizon_months, discount_rate) VALUES
  ('c1','2026-05-31','bgnbd_gg','v1','2026-05-31','week',1,1,1,1,0.9,100,500,'EUR',12,0.01),
  ('c5','2026-05-31','bgnbd_gg','v1','2026-05-31','week',1,1,1,1,0.9,100,300,'EUR',12,0.01)
