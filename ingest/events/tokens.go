package events

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/converge-dev/converge/warehouse"
)

// Token scopes.
const (
	ScopeIngest = "ingest"
	ScopeRead   = "read"
	ScopeAdmin  = "admin"
	// ScopeMetrics may only scrape GET /metrics (Prometheus).
	ScopeMetrics = "metrics"
)

// Scopes lists the valid scopes.
var Scopes = []string{ScopeIngest, ScopeRead, ScopeAdmin, ScopeMetrics}

// A token reads cvg_<id>_<secret>: id is public (it names the row in
// api_tokens), secret is 32 random bytes; only SHA-256 of the secret is
// stored. A fast hash is right here because the secret has 256 bits of
// entropy (passwords, which do not, are hashed with a slow KDF elsewhere).
var tokenRe = regexp.MustCompile(`^cvg_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$`)

// Token is a stored token's public part.
type Token struct {
	ID, Name, Scope string
	CreatedAt       time.Time
	ExpiresAt       *time.Time
	RevokedAt       *time.Time
}

// ErrUnauthorized is returned for a missing, malformed, unknown, revoked,
// expired or out-of-scope token; the message does not say which.
var ErrUnauthorized = errors.New("invalid or missing API token")

// Tokens creates and verifies API tokens.
type Tokens struct {
	st    *warehouse.Store
	mu    sync.Mutex
	cache map[string]cachedToken // by token id
	ttl   time.Duration
}

type cachedToken struct {
	hash    string
	scope   string
	expires *time.Time
	at      time.Time
	valid   bool
}

// NewTokens serves tokens from the store; verified tokens are cached for ttl
// (a revoked token stops working within ttl; 0 means 30 s).
func NewTokens(st *warehouse.Store, ttl time.Duration) *Tokens {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &Tokens{st: st, cache: map[string]cachedToken{}, ttl: ttl}
}

// Create stores a new token and returns it in full; it cannot be shown again.
func (t *Tokens) Create(ctx context.Context, name, scope, createdBy string, expires *time.Time) (string, Token, error) {
	if !validScope(scope) {
		return "", Token{}, fmt.Errorf("scope %q is not one of %s", scope, strings.Join(Scopes, ", "))
	}
	var idb [6]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", Token{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Token{}, err
	}
	id := hex.EncodeToString(idb[:])
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	now := time.Now().UTC()
	tok := Token{ID: id, Name: name, Scope: scope, CreatedAt: now, ExpiresAt: expires}
	err := t.st.App.Exec(ctx, `INSERT INTO api_tokens (token_id, name, scope, hash, created_by, created_at, expires_at, updated_at)
		VALUES ({id:String}, {name:String}, {scope:String}, {hash:String}, {by:String}, {at:DateTime64(3, 'UTC')}, {exp:Nullable(DateTime64(3, 'UTC'))}, {at:DateTime64(3, 'UTC')})`,
		clickhouse.Named("id", id), clickhouse.Named("name", name), clickhouse.Named("scope", scope),
		clickhouse.Named("hash", hashSecret(sec)), clickhouse.Named("by", createdBy),
		clickhouse.Named("at", now.Format("2006-01-02 15:04:05.000")), clickhouse.Named("exp", formatOpt(expires)))
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	return "cvg_" + id + "_" + sec, tok, nil
}

// Revoke marks a token revoked.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	var n uint64
	if err := t.st.App.QueryRow(ctx, "SELECT count() FROM api_tokens FINAL WHERE token_id = {id:String} AND revoked_at IS NULL", clickhouse.Named("id", id)).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no active token %q", id)
	}
	err := t.st.App.Exec(ctx, `INSERT INTO api_tokens (token_id, name, scope, hash, created_by, created_at, expires_at, revoked_at, updated_at)
		SELECT token_id, name, scope, hash, created_by, created_at, expires_at, now64(3), now64(3) FROM api_tokens FINAL WHERE token_id = {id:String}`,
		clickhouse.Named("id", id))
	t.mu.Lock()
	delete(t.cache, id)
	t.mu.Unlock()
	return err
}

// List returns every token's public part, newest first.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := t.st.App.Query(ctx, "SELECT token_id, name, scope, created_at, expires_at, revoked_at FROM api_tokens FINAL ORDER BY created_at DESC")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var tk Token
		if err := rows.Scan(&tk.ID, &tk.Name, &tk.Scope, &tk.CreatedAt, &tk.ExpiresAt, &tk.RevokedAt); err != nil {
			return nil, err
		}
		out = append(out, tk)
	}
	return out, rows.Err()
}

// Verify checks a presented token against scope and returns its id.
func (t *Tokens) Verify(ctx context.Context, presented, scope string) (string, error) {
	m := tokenRe.FindStringSubmatch(presented)
	if m == nil {
		return "", ErrUnauthorized
	}
	id, sec := m[1], m[2]
	now := time.Now()
	t.mu.Lock()
	c, ok := t.cache[id]
	t.mu.Unlock()
	if !ok || now.Sub(c.at) > t.ttl {
		c = cachedToken{at: now}
		var hash, sc string
		var exp, rev *time.Time
		err := t.st.App.QueryRow(ctx, "SELECT hash, scope, expires_at, revoked_at FROM api_tokens FINAL WHERE token_id = {id:String}",
			clickhouse.Named("id", id)).Scan(&hash, &sc, &exp, &rev)
		switch {
		case err == nil:
			c.hash, c.scope, c.expires, c.valid = hash, sc, exp, rev == nil
		case errors.Is(err, sql.ErrNoRows):
			// Not cached: the cache holds only tokens that exist, so presenting made-up
			// ids cannot grow it without bound.
			return "", ErrUnauthorized
		default:
			return "", fmt.Errorf("verify token: %w", err)
		}
		t.mu.Lock()
		t.cache[id] = c
		t.mu.Unlock()
	}
	if !c.valid || subtle.ConstantTimeCompare([]byte(hashSecret(sec)), []byte(c.hash)) != 1 {
		return "", ErrUnauthorized
	}
	if c.expires != nil && now.After(*c.expires) {
		return "", ErrUnauthorized
	}
	if c.scope != scope && c.scope != ScopeAdmin {
		return "", ErrUnauthorized
	}
	return id, nil
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func validScope(s string) bool {
	for _, v := range Scopes {
		if s == v {
			return true
		}
	}
	return false
}

func formatOpt(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format("2006-01-02 15:04:05.000")
	return &s
}
