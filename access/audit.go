package access

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Audit actions written by this package. Other packages use their own names ("export",
// "sql.run", …): an action is a short dotted word, the same for every event of its kind.
const (
	ActionLogin        = "login"
	ActionLoginFailure = "login.failure"
	ActionLogout       = "logout"
	ActionUserCreate   = "user.create"
	ActionUserRole     = "user.role"
	ActionUserDisable  = "user.disable"
	ActionUserEnable   = "user.enable"
	ActionUserPassword = "user.password"
	ActionTokenCreate  = "token.create"
	ActionTokenRevoke  = "token.revoke"
)

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	At                    time.Time // UTC
	Actor, Action, Target string
	Detail                string // JSON object, or ""
	IP                    string
}

// Audit writes an entry to the audit log: actor did action on target, with detail marshalled
// as JSON (nil for none), at the service's clock, with the client address of ctx (see
// WithRequest). An empty actor is ctx's user, or "system".
func (s *Service) Audit(ctx context.Context, actor, action, target string, detail any) error {
	if actor == "" {
		if u, ok := UserFrom(ctx); ok {
			actor = u.Email
		} else {
			actor = "system"
		}
	}
	d := ""
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return fmt.Errorf("audit %s: detail: %w", action, err)
		}
		d = string(b)
	}
	err := s.st.App.Exec(ctx, query("audit_insert"),
		clickhouse.Named("at", chTime(s.now())), clickhouse.Named("actor", actor), clickhouse.Named("action", action),
		clickhouse.Named("target", target), clickhouse.Named("detail", d), clickhouse.Named("ip", ClientIP(ctx)))
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// auditLogged writes an entry and logs, rather than returns, a failure: the action it records
// has happened already.
func (s *Service) auditLogged(ctx context.Context, actor, action, target string, detail any) {
	if err := s.Audit(context.WithoutCancel(ctx), actor, action, target, detail); err != nil {
		s.log.ErrorContext(ctx, "access: audit log", "action", action, "actor", actor, "error", err)
	}
}

// AuditQuery selects audit entries: [From, To) (zero: unbounded), Actor and Target contained
// (case-insensitive; "" for any), Action equal ("" for any), newest first, Limit entries
// (default 50, at most 1000) after Offset.
type AuditQuery struct {
	From, To              time.Time
	Actor, Action, Target string
	Limit, Offset         int
}

// AuditLog returns the entries q selects and how many there are in all (0 when Offset is past
// the end).
func (s *Service) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, int, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	q.Offset = max(q.Offset, 0)
	from, to := q.From, q.To
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	if to.IsZero() {
		to = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := s.st.App.Query(ctx, query("audit_list"),
		clickhouse.Named("from", chTime(from)), clickhouse.Named("to", chTime(to)),
		clickhouse.Named("actor", q.Actor), clickhouse.Named("action", q.Action), clickhouse.Named("target", q.Target),
		clickhouse.Named("limit", fmt.Sprint(q.Limit)), clickhouse.Named("offset", fmt.Sprint(q.Offset)))
	if err != nil {
		return nil, 0, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	var total uint64
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.At, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.IP, &total); err != nil {
			return nil, 0, fmt.Errorf("read audit log: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, int(total), rows.Err()
}

// AuditActions lists the actions in the audit log, for a filter.
func (s *Service) AuditActions(ctx context.Context) ([]string, error) {
	rows, err := s.st.App.Query(ctx, query("audit_actions"))
	if err != nil {
		return nil, fmt.Errorf("read audit actions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
