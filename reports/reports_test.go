package reports

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-dev/converge/metrics"
	"github.com/converge-dev/converge/warehouse"
	"github.com/converge-dev/converge/warehouse/whtest"
)

func TestMain(m *testing.M) { os.Exit(whtest.Main(m)) }

var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// TestCronAcrossDST: schedules follow the wall clock of their zone; a time a
// change of the clocks skips runs when the gap ends, a time it repeats runs
// once.
func TestCronAcrossDST(t *testing.T) {
	cases := []struct {
		expr  string
		after string // UTC
		want  []string
	}{
		// 06:00 in Berlin is 05:00 UTC in winter and 04:00 UTC in summer (from 29 March 2026).
		{"0 6 * * *", "2026-03-27T12:00:00Z", []string{"2026-03-28T05:00:00Z", "2026-03-29T04:00:00Z", "2026-03-30T04:00:00Z"}},
		{"0 6 * * *", "2026-10-23T12:00:00Z", []string{"2026-10-24T04:00:00Z", "2026-10-25T05:00:00Z", "2026-10-26T05:00:00Z"}},
		// 02:30 does not exist on 29 March: the run is at 03:00 CEST (01:00 UTC), when the gap ends.
		{"30 2 * * *", "2026-03-28T12:00:00Z", []string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		// 02:30 happens twice on 25 October: once, the first time (CEST, 00:30 UTC).
		{"30 2 * * *", "2026-10-24T12:00:00Z", []string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		// The 1st of each month at 06:00, across both changes.
		{"0 6 1 * *", "2026-02-15T00:00:00Z", []string{"2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"}},
		{"0 7 * * MON", "2026-10-21T00:00:00Z", []string{"2026-10-26T06:00:00Z", "2026-11-02T06:00:00Z"}},
		{"@monthly", "2026-10-21T00:00:00Z", []string{"2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z"}},
	}
	for _, c := range cases {
		spec, err := parseCron(c.expr, berlin)
		if err != nil {
			t.Fatal(err)
		}
		at, _ := time.Parse(time.RFC3339, c.after)
		var got []string
		for range c.want {
			at = spec.Next(at)
			got = append(got, at.UTC().Format(time.RFC3339))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q after %s: %v, want %v", c.expr, c.after, got, c.want)
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
	changed chan struct{} // a timer was added
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, changed: make(chan struct{}, 100)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &waiter{at: f.now.Add(d), c: make(chan time.Time, 1)}
	f.waiters = append(f.waiters, w)
	f.changed <- struct{}{}
	return w.c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		i := slices.Index(f.waiters, w)
		if i >= 0 {
			f.waiters = slices.Delete(f.waiters, i, i+1)
		}
		return i >= 0
	}
}

// waitTimers waits until n timers are pending.
func (f *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		f.mu.Lock()
		k := len(f.waiters)
		f.mu.Unlock()
		if k >= n {
			return
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("%d timers pending, want %d", k, n)
		}
	}
}

// advance moves the clock to the earliest pending timer and fires it; it
// returns the new time.
func (f *fakeClock) advance() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	slices.SortFunc(f.waiters, func(a, b *waiter) int { return a.at.Compare(b.at) })
	w := f.waiters[0]
	f.waiters = f.waiters[1:]
	if w.at.After(f.now) {
		f.now = w.at
	}
	w.c <- f.now
	return f.now
}

// TestSchedulerFiresAcrossDST runs the scheduler on a fake clock: a daily
// 06:00 Berlin schedule fires at 05:00 UTC before the clocks change and at
// 04:00 UTC after, and reports on the previous month in Berlin.
func TestSchedulerFiresAcrossDST(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC))
	svc := testService(t, whtest.Store(t), clock, Config{Dir: t.TempDir(), Schedules: []Schedule{
		{Name: "daily", Cron: "0 6 * * *", TZ: berlin, Report: KindFinance}}})
	type fire struct {
		at     time.Time
		period string
	}
	fired := make(chan fire, 10)
	svc.produce = func(_ context.Context, sc *Schedule, at time.Time) (*output, error) {
		_, _, label := svc.period(sc, at)
		fired <- fire{at, label}
		return &output{period: label}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	want := []fire{{time.Date(2026, 3, 28, 5, 0, 0, 0, time.UTC), "2026-02"}, {time.Date(2026, 3, 29, 4, 0, 0, 0, time.UTC), "2026-02"},
		{time.Date(2026, 3, 30, 4, 0, 0, 0, time.UTC), "2026-02"}}
	for _, w := range want {
		clock.waitTimers(t, 1)
		clock.advance()
		select {
		case f := <-fired:
			if !f.at.Equal(w.at) || f.period != w.period {
				t.Errorf("fired at %s for %s, want %s for %s", f.at.UTC(), f.period, w.at, w.period)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no run at %s", w.at)
		}
		waitIdle(t, svc) // the run is recorded before the clock moves on (else the next is skipped)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	runs, err := svc.Runs(context.Background(), "daily", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].Status != StatusOK || !runs[0].ScheduledAt.Equal(want[2].at) || runs[0].Trigger != TriggerSchedule {
		t.Errorf("recorded runs %+v", runs)
	}
}

// TestSchedulerRetriesThenFails: a run that keeps failing is tried three
// times, 1 and then 2 minutes apart, and recorded as failed with its error
// in report_runs and the audit log.
func TestSchedulerRetriesThenFails(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC))
	var audited []string
	var mu sync.Mutex
	svc := testService(t, whtest.Store(t), clock, Config{Dir: t.TempDir(), Schedules: []Schedule{
		{Name: "monthly", Cron: "0 6 1 * *", TZ: berlin, Report: KindFinance}}})
	svc.audit = func(_ context.Context, actor, action, target string, detail any) error {
		mu.Lock()
		defer mu.Unlock()
		audited = append(audited, actor+" "+action+" "+target+" "+detail.(map[string]any)["status"].(string))
		return nil
	}
	var tries []time.Time
	svc.produce = func(_ context.Context, _ *Schedule, _ time.Time) (*output, error) {
		mu.Lock()
		defer mu.Unlock()
		tries = append(tries, clock.Now())
		return nil, errors.New("the store is down")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	clock.waitTimers(t, 1)
	clock.advance() // 1 June 06:00 Berlin: the first try
	clock.waitTimers(t, 2)
	clock.advance() // a minute later
	clock.waitTimers(t, 2)
	clock.advance() // two more
	var runs []Run
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if runs, err = svc.Runs(context.Background(), "", 10); err != nil {
			t.Fatal(err)
		}
		if len(runs) > 0 {
			break
		}
	}
	cancel()
	<-done
	first := time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)
	wantTries := []time.Time{first, first.Add(time.Minute), first.Add(3 * time.Minute)}
	if !slices.EqualFunc(tries, wantTries, time.Time.Equal) {
		t.Errorf("tries at %v, want %v", tries, wantTries)
	}
	if len(runs) != 1 || runs[0].Status != StatusFailed || runs[0].Attempts != 3 || !strings.Contains(runs[0].Error, "the store is down") ||
		!runs[0].FinishedAt.Equal(wantTries[2]) {
		t.Fatalf("recorded runs %+v, want one failed after 3 attempts", runs)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(audited, []string{"scheduler report.run monthly failed"}) {
		t.Errorf("audit log %v", audited)
	}
}

// waitIdle waits until no run is under way.
func waitIdle(t *testing.T, svc *Service) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		svc.mu.Lock()
		n := len(svc.running)
		svc.mu.Unlock()
		if n == 0 {
			return
		}
	}
	t.Fatal("a run is still under way")
}

// testService is a service over st with the finance fixture's registry settings.
func testService(t *testing.T, st *warehouse.Store, clock Clock, cfg Config) *Service {
	t.Helper()
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TZ == nil {
		cfg.TZ = berlin
	}
	cfg.Currency, cfg.Version = "EUR", "test"
	svc, err := New(reg, st, cfg, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// smtpServer is a fake SMTP server on loopback: it takes one message at a
// time and hands it to the test. With auth set it offers AUTH PLAIN and
// checks the credentials.
type smtpServer struct {
	addr     string
	auth     string      // "\x00user\x00password", or "" to offer no AUTH
	tls      *tls.Config // offers STARTTLS when set
	messages chan receivedMail
}

type receivedMail struct {
	from string
	to   []string
	data []byte
	auth string
	tls  bool // the message came after STARTTLS
}

func startSMTP(t *testing.T, auth string) *smtpServer { return startSMTPTLS(t, auth, nil) }

func startSMTPTLS(t *testing.T, auth string, cfg *tls.Config) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{addr: ln.Addr().String(), auth: auth, tls: cfg, messages: make(chan receivedMail, 10)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer func() { c.Close() }()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 fake ESMTP")
	var m receivedMail
	secure := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(cmd) {
		case "EHLO", "HELO":
			ext := "250-fake\r\n"
			if s.tls != nil && !secure {
				ext += "250-STARTTLS\r\n"
			}
			if s.auth != "" {
				ext += "250-AUTH PLAIN\r\n"
			}
			_ = tp.PrintfLine("%s250 8BITMIME", ext)
		case "STARTTLS":
			_ = tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, secure, m.tls = tc, true, true
			tp = textproto.NewConn(tc)
		case "AUTH":
			b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(arg, "PLAIN "))
			m.auth = string(b)
			if string(b) != s.auth {
				_ = tp.PrintfLine("535 authentication failed")
				continue
			}
			_ = tp.PrintfLine("235 ok")
		case "MAIL":
			m.from, _, _ = strings.Cut(strings.TrimPrefix(arg, "FROM:<"), ">")
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			to, _, _ := strings.Cut(strings.TrimPrefix(arg, "TO:<"), ">")
			m.to = append(m.to, to)
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			m.data, err = tp.ReadDotBytes()
			if err != nil {
				return
			}
			_ = tp.PrintfLine("250 queued")
			s.messages <- m
			m = receivedMail{}
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}

// attachment reads the message's parts: its text and its attached file.
func attachment(t *testing.T, data []byte) (subject, text, filename string, file []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() != "" {
			filename, file = p.FileName(), body
		} else {
			text = string(body)
		}
	}
	return subject, text, filename, file
}

// TestRunNowSendsThePack: `converge reports run` of a finance schedule
// writes the previous month's pack and its manifest into reports.dir,
// e-mails it as an attachment through the (fake) SMTP server, and records
// the run.
func TestRunNowSendsThePack(t *testing.T) {
	st := whtest.Store(t)
	fixture, err := os.ReadFile(filepath.Join("..", "export", "testdata", "finance.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for stmt := range strings.SplitSeq(string(fixture), ";\n") {
		if err := st.Conn.Exec(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	srv := startSMTP(t, "\x00reports@example.com\x00secret")
	dir := t.TempDir()
	clock := newFakeClock(time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)) // 1 June, 06:00 in Berlin
	host, port, _ := net.SplitHostPort(srv.addr)
	p, _ := strconv.Atoi(port)
	svc := testService(t, st, clock, Config{Dir: dir, SMTP: SMTP{Host: host, Port: p, User: "reports@example.com", Password: "secret",
		From: "converge <reports@example.com>", To: []string{"cfo@example.com", "controller@example.com"}},
		Schedules: []Schedule{{Name: "finance", Cron: "0 6 1 * *", Report: KindFinance, Email: true}}})
	run, err := svc.RunNow(context.Background(), "finance", "ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusOK || run.Period != "2026-05" || run.Attempts != 1 || run.Error != "" ||
		!slices.Equal(run.EmailedTo, []string{"cfo@example.com", "controller@example.com"}) {
		t.Fatalf("run %+v", run)
	}
	if want := filepath.Join(dir, "finance_2026-05.zip"); run.File != want {
		t.Errorf("file %s, want %s", run.File, want)
	}
	written, err := os.ReadFile(run.File)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(run.File + ".manifest.json"); err != nil {
		t.Errorf("no manifest: %v", err)
	}
	var got receivedMail
	select {
	case got = <-srv.messages:
	case <-time.After(20 * time.Second):
		t.Fatal("no message arrived")
	}
	if got.from != "reports@example.com" || !slices.Equal(got.to, run.EmailedTo) || got.auth != "\x00reports@example.com\x00secret" {
		t.Errorf("envelope from %q to %v auth %q", got.from, got.to, got.auth)
	}
	subject, text, filename, file := attachment(t, got.data)
	if subject != "converge report finance: 2026-05" || filename != "finance_2026-05.zip" || !bytes.Equal(file, written) ||
		!strings.Contains(text, "Reconciled: true") || !strings.Contains(text, run.SHA256) {
		t.Errorf("message: subject %q, file %q (%d bytes, the file has %d), text %q", subject, filename, len(file), len(written), text)
	}
	zr, err := zip.NewReader(bytes.NewReader(file), int64(len(file)))
	if err != nil || len(zr.File) != 5 {
		t.Errorf("attachment is not the pack: %v", err)
	}
	runs, err := svc.Runs(context.Background(), "", 5)
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID || runs[0].Trigger != TriggerManual || runs[0].SHA256 != run.SHA256 ||
		!slices.Equal(runs[0].EmailedTo, run.EmailedTo) {
		t.Errorf("recorded %+v, %v", runs, err)
	}
}

// TestMailRefusals: a server without STARTTLS when it is required, and
// wrong credentials, are errors that say so.
func TestMailRefusals(t *testing.T) {
	srv := startSMTP(t, "\x00u\x00right")
	host, port, _ := net.SplitHostPort(srv.addr)
	p, _ := strconv.Atoi(port)
	msg := message{subject: "s", body: "b", filename: "f.csv", data: []byte("a,b\n"), date: time.Now()}
	err := sendMail(context.Background(), SMTP{Host: host, Port: p, From: "a@example.com", StartTLS: true, Timeout: 5 * time.Second}, []string{"b@example.com"}, msg)
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Errorf("STARTTLS required: %v", err)
	}
	err = sendMail(context.Background(), SMTP{Host: host, Port: p, User: "u", Password: "wrong", From: "a@example.com", Timeout: 5 * time.Second}, []string{"b@example.com"}, msg)
	if err == nil || !strings.Contains(err.Error(), "authenticate as u") {
		t.Errorf("wrong password: %v", err)
	}
	if err := sendMail(context.Background(), SMTP{Host: host, Port: p, User: "u", Password: "right", From: "a@example.com", Timeout: 5 * time.Second}, []string{"b@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	got := <-srv.messages
	_, _, name, file := attachment(t, got.data)
	if name != "f.csv" || string(file) != "a,b\n" || got.tls {
		t.Errorf("attachment %q %q (tls %v)", name, file, got.tls)
	}
}

// TestMailSTARTTLS: with smtp.starttls the connection is upgraded before the
// credentials and the message go, and the server's certificate is checked.
func TestMailSTARTTLS(t *testing.T) {
	web := httptest.NewUnstartedServer(nil)
	web.StartTLS() // for its certificate: 127.0.0.1 and example.com
	defer web.Close()
	srv := startSMTPTLS(t, "\x00u\x00pw", &tls.Config{Certificates: web.TLS.Certificates})
	host, port, _ := net.SplitHostPort(srv.addr)
	p, _ := strconv.Atoi(port)
	m := SMTP{Host: host, Port: p, User: "u", Password: "pw", From: "a@example.com", StartTLS: true, Timeout: 5 * time.Second}
	msg := message{subject: "Bericht für Mai", body: "b", filename: "p.zip", data: []byte("PK\x03\x04"), date: time.Now()}
	if err := sendMail(context.Background(), m, []string{"b@example.com"}, msg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unknown certificate was accepted: %v", err)
	}
	rootCAs = x509.NewCertPool()
	rootCAs.AddCert(web.Certificate())
	defer func() { rootCAs = nil }()
	if err := sendMail(context.Background(), m, []string{"b@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	got := <-srv.messages
	subject, _, name, file := attachment(t, got.data)
	if !got.tls || got.auth != "\x00u\x00pw" || subject != "Bericht für Mai" || name != "p.zip" || string(file) != "PK\x03\x04" {
		t.Errorf("tls %v auth %q subject %q attachment %q %q", got.tls, got.auth, subject, name, file)
	}
}

// TestConfigErrors: each mistake is refused with its key.
func TestConfigErrors(t *testing.T) {
	sched := func(s Schedule) Config { return Config{Dir: "x", Schedules: []Schedule{s}} }
	cases := []struct {
		cfg  Config
		want string
	}{
		{sched(Schedule{Name: "a", Cron: "61 * * * *", Report: KindFinance}), `reports.schedules[0].cron: "61 * * * *" is not a cron expression`},
		{sched(Schedule{Name: "a", Cron: "0 6 * *", Report: KindFinance}), "reports.schedules[0].cron: \"0 6 * *\" is not a cron expression (minute hour day-of-month month day-of-week): expected exactly 5 fields"},
		{sched(Schedule{Name: "a", Cron: "0 0 30 2 *", Report: KindFinance}), "reports.schedules[0].cron: \"0 0 30 2 *\" never fires"},
		{sched(Schedule{Name: "a", Cron: "CRON_TZ=UTC 0 6 * * *", Report: KindFinance}), "set the time zone with the schedule's tz"},
		{sched(Schedule{Name: "a", Cron: "0 6 * * *", Report: "weekly-sales"}), `reports.schedules[0].report: unknown report "weekly-sales"`},
		{sched(Schedule{Name: "a", Cron: "0 6 * * *"}), "reports.schedules[0].report: required"},
		{sched(Schedule{Name: "a", Cron: "0 6 * * *", Report: KindMetric}), "reports.schedules[0].metric: required"},
		{sched(Schedule{Name: "a", Cron: "0 6 * * *", Report: KindMetric, Metric: "aov", Period: "last_fortnight"}), `reports.schedules[0].period: "last_fortnight" is not one of`},
		{sched(Schedule{Name: "a", Cron: "0 6 * * *", Report: KindMetric, Metric: "aov", Params: map[string][]string{"from": {"2026-01-01"}}}), "reports.schedules[0].params.from: set by the period"},
		{sched(Schedule{Name: "a", Cron: "0 6 * * *", Report: KindFinance, Format: "csv"}), `reports.schedules[0].format: "csv" is not zip or xlsx`},
		{sched(Schedule{Name: "a b", Cron: "0 6 * * *", Report: KindFinance}), "reports.schedules[0].name"},
		{Config{Dir: "x", Schedules: []Schedule{{Name: "a", Cron: "0 6 * * *", Report: KindFinance}, {Name: "a", Cron: "0 7 * * *", Report: KindFinance}}},
			`reports.schedules[1].name: "a" is also the name of reports.schedules[0]`},
		{Config{Schedules: []Schedule{{Name: "a", Cron: "0 6 * * *", Report: KindFinance}}}, "reports.dir: empty"},
		{Config{SMTP: SMTP{Host: "mail", From: "not an address"}}, "smtp.from"},
		{Config{SMTP: SMTP{Host: "mail", From: "a@example.com", User: "a"}}, "smtp.password: empty while smtp.user is set"},
		{Config{Tries: 20}, "reports.tries"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg.Schedules, err, c.want)
		}
	}
}

// TestMetricSchedules: a metric schedule's unknown metric and bad
// parameters are refused by New; its period is the previous one in its zone.
func TestMetricSchedules(t *testing.T) {
	st := whtest.Store(t)
	reg, err := metrics.New(context.Background(), metrics.Options{Store: st, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    Schedule
		want string
	}{
		{Schedule{Name: "a", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_grosss"}, `reports.schedules[0].metric: unknown metric "revenue_grosss"`},
		{Schedule{Name: "a", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_gross", Params: map[string][]string{"by": {"colour"}}},
			`reports.schedules[0].params.by: revenue_gross has no dimension "colour"`},
		{Schedule{Name: "a", Cron: "0 6 * * *", Report: KindMetric, Metric: "roas", Params: map[string][]string{"arg": {"model=best"}}},
			"reports.schedules[0].params.model"},
	} {
		_, err := New(reg, st, Config{Dir: "x", Schedules: []Schedule{c.s}}, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: err %v, want %q", c.s.Metric, c.s.Params, err, c.want)
		}
	}
	svc, err := New(reg, st, Config{Dir: "x", TZ: berlin, WeekStart: time.Monday, FiscalYearStart: time.April, Schedules: []Schedule{
		{Name: "d", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_gross", Period: "previous_day"},
		{Name: "w", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_gross", Period: "previous_week"},
		{Name: "m", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_gross"},
		{Name: "q", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_gross", Period: "previous_quarter"},
		{Name: "y", Cron: "0 6 * * *", Report: KindMetric, Metric: "revenue_gross", Period: "previous_year"},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Wednesday 3 June 2026, 00:30 in Berlin (22:30 UTC the day before); fiscal years start in April.
	at := time.Date(2026, 6, 2, 22, 30, 0, 0, time.UTC)
	for name, want := range map[string]string{"d": "2026-06-02", "w": "2026-05-25..2026-05-31", "m": "2026-05",
		"q": "2026-01-01..2026-03-31", "y": "2025-04-01..2026-03-31"} {
		sc, _ := svc.Schedule(name)
		p, label, err := svc.metricParams(sc, at)
		if err != nil || label != want {
			t.Errorf("%s: period %q, %v; want %q", name, label, err, want)
		}
		if p.TZ.String() != "Europe/Berlin" || (name == "q" || name == "y") != (p.Grain == metrics.Month) {
			t.Errorf("%s: zone %s grain %s", name, p.TZ, p.Grain)
		}
		// The whole period, its last day included: [first day 00:00, the day after the last 00:00) in Berlin.
		first, last, _ := strings.Cut(want, "..")
		if last == "" {
			last = first
		}
		if len(first) == 7 { // a month
			first += "-01"
			m, _ := time.ParseInLocation("2006-01-02", first, berlin)
			last = m.AddDate(0, 1, -1).Format(time.DateOnly)
		}
		f, _ := time.ParseInLocation(time.DateOnly, first, berlin)
		l, _ := time.ParseInLocation(time.DateOnly, last, berlin)
		if !p.From.Equal(f) || !p.To.Equal(l.AddDate(0, 0, 1)) {
			t.Errorf("%s: [%v, %v), want [%v, %v): the period's last day included", name, p.From, p.To, f, l.AddDate(0, 0, 1))
		}
	}
}

// TestSkippedWhileRunning: a run of a schedule whose previous run is still
// going is not started, and is recorded as skipped.
func TestSkippedWhileRunning(t *testing.T) {
	svc := testService(t, whtest.Store(t), newFakeClock(time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)), Config{Dir: t.TempDir(),
		Schedules: []Schedule{{Name: "finance", Cron: "0 6 1 * *", Report: KindFinance}}})
	svc.produce = func(context.Context, *Schedule, time.Time) (*output, error) {
		t.Error("a second run was started")
		return nil, errors.New("no")
	}
	svc.begin("finance")
	run, err := svc.RunNow(context.Background(), "finance", "")
	if err != nil || run.Status != StatusSkipped {
		t.Fatalf("run %+v, %v", run, err)
	}
	runs, err := svc.Runs(context.Background(), "finance", 5)
	if err != nil || len(runs) != 1 || runs[0].Status != StatusSkipped || !strings.Contains(runs[0].Error, "still going") {
		t.Errorf("recorded %+v, %v", runs, err)
	}
	if _, err := svc.RunNow(context.Background(), "nope", ""); err == nil || !strings.Contains(err.Error(), `no schedule "nope"`) {
		t.Errorf("unknown schedule: %v", err)
	}
}
