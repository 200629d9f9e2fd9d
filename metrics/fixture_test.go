package metrics

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

var (
	fixtureOnce  sync.Once
	fixtureStore *warehouse.Store
	fixtureErr   error
)

// fixture is one migrated database with the hand-computed fixture below,
// shared by the tests that only read it (a fresh database per test would
// cost a migration each). Values are checked by hand in testdata/*.golden.
//
// All amounts EUR. Orders (source shop):
//
//	o1 c1 2026-01-05 10:00 100 cost 60   ads/spring DE
//	o2 c1 2026-01-05 15:00  50 cost NULL ads DE           (same day as o1; cost = 35 at 30 % margin)
//	o3 c2 2026-01-20       200 cost 120  organic FR       (refund r1 50 paid 2026-02-02)
//	o4 c1 2026-02-10        80 cost 40   email DE
//	o5 c3 2026-02-15       300 cost 200  ads/spring DE refund on order 30
//	o6 c2 2026-02-28 23:30  40 cost 20   organic FR       (March in Europe/Berlin)
//	o7 c4 2026-03-10       500 cancelled
//	o8 '' 2026-03-12        20 cost 10   organic DE       (anonymous)
//	o9 c3 2026-03-20        60 cost 30   ads DE
func fixture(t *testing.T) *warehouse.Store {
	t.Helper()
	fixtureOnce.Do(func() {
		// One database for the whole package (whtest.Store drops its database when
		// the first test ends); the engine's directory goes when the binary ends.
		s2, err := warehouse.OpenOnEngine(context.Background(), whtest.Engine(t), "metrics_fixture", nil)
		if err != nil {
			fixtureErr = err
			return
		}
		if _, err := s2.Migrate(context.Background()); err != nil {
			fixtureErr = err
			return
		}
		fixtureErr = loadFixture(context.Background(), s2)
		fixtureStore = s2
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureStore
}

var fixtureSQL = []string{
	`INSERT INTO customers (customer_id, email, phone, first_seen_at, country, source) VALUES
	 ('c1','a@x.org','+491',  '2025-12-01 00:00:00','DE','shop'),
	 ('c2','b@x.org','',      '2026-01-01 00:00:00','FR','shop'),
	 ('c3','',       '+493',  '2026-02-01 00:00:00','DE','shop'),
	 ('c4','d@x.org','',      '2026-03-01 00:00:00','DE','shop')`,
	`INSERT INTO orders (order_id, customer_id, ordered_at, revenue, currency, cost, refund, status, channel, campaign, country, source) VALUES
	 ('o1','c1','2026-01-05 10:00:00',100,'EUR',60,  0,'completed','ads','spring','DE','shop'),
	 ('o2','c1','2026-01-05 15:00:00', 50,'EUR',NULL,0,'completed','ads','','DE','shop'),
	 ('o3','c2','2026-01-20 12:00:00',200,'EUR',120, 0,'completed','organic','','FR','shop'),
	 ('o4','c1','2026-02-10 12:00:00', 80,'EUR',40,  0,'completed','email','','DE','shop'),
	 ('o5','c3','2026-02-15 12:00:00',300,'EUR',200,30,'completed','ads','spring','DE','shop'),
	 ('o6','c2','2026-02-28 23:30:00', 40,'EUR',20,  0,'completed','organic','','FR','shop'),
	 ('o7','c4','2026-03-10 12:00:00',500,'EUR',300, 0,'cancelled','ads','','DE','shop'),
	 ('o8','',  '2026-03-12 12:00:00', 20,'EUR',10,  0,'completed','organic','','DE','shop'),
	 ('o9','c3','2026-03-20 12:00:00', 60,'EUR',30,  0,'completed','ads','','DE','shop')`,
	`INSERT INTO refunds (refund_id, order_id, customer_id, refunded_at, amount, currency, source) VALUES
	 ('r1','o3','c2','2026-02-02 09:00:00',50,'EUR','shop')`,
	`INSERT INTO marketing_spend (date, channel, campaign, spend, currency, source) VALUES
	 ('2026-01-01','ads','spring',100,'EUR','gads'),
	 ('2026-02-01','ads','spring',150,'EUR','gads'),
	 ('2026-02-01','email','',     30,'EUR','mail'),
	 ('2026-03-01','ads','',       50,'EUR','gads')`,
	`INSERT INTO touchpoints (event_id, customer_id, occurred_at, channel, campaign, kind, source) VALUES
	 ('e1','c1','2026-01-01 10:00:00','ads','spring','click','web'),
	 ('e2','c1','2026-01-03 10:00:00','email','','signup','web'),
	 ('e3','c1','2026-01-04 10:00:00','email','','open','web'),
	 ('e4','c3','2026-02-14 10:00:00','ads','spring','click','web'),
	 ('e5','c2','2026-01-15 10:00:00','organic','','visit','web'),
	 ('e6','c2','2026-01-16 10:00:00','organic','','signup','web')`,
	`INSERT INTO survey_responses (response_id, customer_id, answered_at, kind, score, source) VALUES
	 ('s1','c1','2026-01-10 10:00:00','nps',10,'survey'),
	 ('s2','c2','2026-01-11 10:00:00','nps', 9,'survey'),
	 ('s3','c3','2026-01-12 10:00:00','nps', 7,'survey'),
	 ('s4','c4','2026-01-13 10:00:00','nps', 3,'survey'),
	 ('s5','c1','2026-02-10 10:00:00','nps', 6,'survey'),
	 ('s6','c1','2026-01-10 10:00:00','csat',5,'survey'),
	 ('s7','c2','2026-01-11 10:00:00','csat',4,'survey'),
	 ('s8','c3','2026-01-12 10:00:00','csat',2,'survey')`,
	`INSERT INTO tickets (ticket_id, customer_id, opened_at, first_response_at, resolved_at, channel, status, priority, source) VALUES
	 ('t1','c1','2026-01-03 10:00:00','2026-01-03 12:00:00','2026-01-04 10:00:00','email','resolved','high','desk'),
	 ('t2','c2','2026-01-10 08:00:00','2026-01-10 09:00:00',NULL,'chat','open','low','desk'),
	 ('t3','c3','2026-02-01 08:00:00','2026-02-01 11:00:00','2026-02-01 13:00:00','chat','resolved','low','desk')`,
	`INSERT INTO consents (customer_id, channel, purpose, granted, source_system, recorded_at, source) VALUES
	 ('c1','email','marketing',true, 'shop','2026-01-01 00:00:00','shop'),
	 ('c1','email','marketing',false,'crm', '2026-02-01 00:00:00','crm'),
	 ('c1','email','marketing',true, 'shop','2026-03-01 00:00:00','shop'),
	 ('c2','email','marketing',true, 'shop','2026-01-01 00:00:00','shop'),
	 ('c2','email','marketing',false,'shop','2026-02-15 00:00:00','shop'),
	 ('c3','email','marketing',true, 'shop','2026-01-01 00:00:00','shop'),
	 ('c3','sms',  'marketing',true, 'shop','2026-01-01 00:00:00','shop')`,
	`INSERT INTO rewards (reward_id, customer_id, granted_at, kind, amount, currency, source) VALUES
	 ('w1','c1','2026-01-10 00:00:00','voucher',10,'EUR','crm'),
	 ('w2','c1','2026-01-20 00:00:00','voucher', 5,'EUR','crm'),
	 ('w3','c2','2026-01-25 00:00:00','gift',   15,'EUR','crm'),
	 ('w4','c3','2026-02-25 00:00:00','points', 20,'EUR','crm')`,
}

func loadFixture(ctx context.Context, s *warehouse.Store) error {
	for _, q := range fixtureSQL {
		if err := s.Conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
