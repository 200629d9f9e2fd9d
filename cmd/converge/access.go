package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/server"
	"github.com/converge-dev/converge/warehouse"
)

func (c AuthConfig) validate() error {
	if err := access.ValidateEmail(c.BootstrapEmail); err != nil {
		return fmt.Errorf("auth.bootstrap_email: %v", err)
	}
	switch c.CookieSecure {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("auth.cookie_secure: %q is not one of auto, always, never", c.CookieSecure)
	}
	if c.FailuresPerAccount < 1 || c.FailuresPerIP < 1 {
		return errors.New("auth.login_failures_per_account, auth.login_failures_per_ip: at least 1")
	}
	if c.LoginWindow < time.Second || c.LoginWindow > 24*time.Hour {
		return fmt.Errorf("auth.login_window: %s is not between 1s and 24h (failures are kept a day)", c.LoginWindow)
	}
	if c.ProxyHeader != "" && len(c.TrustedProxies) == 0 {
		return errors.New("auth.proxy_header is set but auth.trusted_proxies is empty: name the proxy's addresses, or the header would be trusted from nobody")
	}
	if _, err := server.ParseProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("auth.trusted_proxies: %v", err)
	}
	return c.access().Validate()
}

// access is the access package's configuration.
func (c AuthConfig) access() access.Config {
	return access.Config{IdleTimeout: c.SessionIdle, AbsoluteTimeout: c.SessionAbsolute,
		LoginFailuresPerAccount: c.FailuresPerAccount, LoginFailuresPerIP: c.FailuresPerIP, LoginWindow: c.LoginWindow}
}

// server is the server's part of it.
func (c AuthConfig) server() server.AuthConfig {
	return server.AuthConfig{CookieSecure: c.CookieSecure, SessionTTL: int(c.SessionAbsolute.Seconds()),
		ProxyHeader: c.ProxyHeader, TrustedProxies: c.TrustedProxies}
}

// openAccess serves users, sessions and the audit log from st.
func (a *app) openAccess(st *warehouse.Store) (*access.Service, error) {
	return access.New(st, a.cfg.Auth.access(), a.log)
}

// bootstrapAdmin creates the first admin when there are no users, and writes its password once
// to the log (stderr), never again.
func (a *app) bootstrapAdmin(ctx context.Context, acc *access.Service) error {
	pw, err := acc.Bootstrap(ctx, a.cfg.Auth.BootstrapEmail)
	if err != nil || pw == "" {
		return err
	}
	a.log.Warn("first run: created an admin; sign in with this password, shown only now, then change it with `converge user passwd`",
		"email", a.cfg.Auth.BootstrapEmail, "password", pw)
	return nil
}

// cliAudit writes an audit entry of a command (actor "cli"); a failure is returned.
func (a *app) cliAudit(ctx context.Context, st *warehouse.Store, action, target string, detail any) error {
	acc, err := a.openAccess(st)
	if err != nil {
		return err
	}
	return acc.Audit(ctx, "cli", action, target, detail)
}

// readPassword reads a new password: on a terminal it is asked twice without echo; otherwise
// the first line of in is taken (for scripts: `echo "$PW" | converge user add …`).
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "Repeat the password: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", usageError{errors.New("the passwords differ")}
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageError{errors.New("no password on stdin (give it as the first line)")}
	}
	return pw, nil
}
