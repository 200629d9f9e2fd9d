package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/converge-dev/converge/access"
	"github.com/converge-dev/converge/views"
)

// Administration pages (role admin): users and the audit log. Every change is a POST with the
// session's CSRF token (checked by require) and is written to the audit log by package access.

const auditPageSize = 50

func (s *Server) needAccess() error {
	if s.access == nil {
		return errUnavailable("Access control is not configured on this server.")
	}
	return nil
}

// actor is the email of the request's user, for the audit log.
func actor(c *gin.Context) string {
	if id := identityOf(c); id.user != nil {
		return id.user.Email
	}
	return ""
}

// adminUsers lists the users (GET /admin/users).
func (s *Server) adminUsers(c *gin.Context) error {
	return s.renderUsers(c, http.StatusOK, views.AdminUsersView{Form: views.UserForm{Role: executive.String()}})
}

// renderUsers renders the users page over v (its messages and form), with the list of users.
func (s *Server) renderUsers(c *gin.Context, status int, v views.AdminUsersView) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	users, err := s.access.Users(c.Request.Context())
	if err != nil {
		return err
	}
	loc, _ := loadZone(s.reportTZ(c))
	v.Page = s.page(c, "Users", "admin")
	v.Roles = access.RoleNames()
	for _, u := range users {
		v.Users = append(v.Users, views.UserRow{Email: u.Email, Name: u.Name, Role: u.Role.String(), Disabled: u.Disabled,
			Created: u.CreatedAt.In(loc).Format(dateLayout), ActionURL: "/admin/users/" + url.PathEscape(u.Email)})
	}
	c.Header("Cache-Control", "no-store")
	// After a change (a form post) the page is still /admin/users.
	return s.renderTablesAt(c, &url.URL{Path: "/admin/users"}, status, &v, func() templ.Component { return views.AdminUsers(v) })
}

// adminAddUser adds a user (POST /admin/users: email, name, role, password; an empty password
// is generated and shown once). A refusal shows the page again with 400 and the reason.
func (s *Server) adminAddUser(c *gin.Context) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	form := views.UserForm{Email: c.PostForm("email"), Name: c.PostForm("name"), Role: c.PostForm("role")}
	v := views.AdminUsersView{Form: form}
	role, err := access.ParseRole(form.Role)
	if err != nil {
		v.Error = err.Error()
		return s.renderUsers(c, http.StatusBadRequest, v)
	}
	pw, generated := c.PostForm("password"), false
	if pw == "" {
		pw, generated = access.GeneratePassword(), true
	}
	u, err := s.access.AddUser(c.Request.Context(), actor(c), access.User{Email: form.Email, Name: form.Name, Role: role}, pw)
	if err != nil {
		v.Error = "The user was not added: " + s.errorText(c, "admin: add user", err)
		return s.renderUsers(c, http.StatusBadRequest, v)
	}
	v.Form = views.UserForm{Role: executive.String()}
	v.Notice = fmt.Sprintf("Added %s (%s).", u.Email, u.Role)
	if generated {
		v.NewPassword, v.NewPasswordFor = pw, u.Email
	}
	return s.renderUsers(c, http.StatusOK, v)
}

// adminChangeUser changes a user's role (field role) or disables or enables them (field
// disabled=true|false): POST /admin/users/:email. Unknown user: 404; a refused change (the last
// admin): 400.
func (s *Server) adminChangeUser(c *gin.Context) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	ctx := c.Request.Context()
	email := access.NormalizeEmail(c.Param("email"))
	v := views.AdminUsersView{Form: views.UserForm{Role: executive.String()}}
	var done []string
	var err error
	if r := c.PostForm("role"); r != "" {
		var role access.Role
		if role, err = access.ParseRole(r); err == nil {
			err = s.access.SetRole(ctx, actor(c), email, role)
			done = append(done, "role "+role.String())
		}
	}
	if d := c.PostForm("disabled"); err == nil && d != "" {
		var disabled bool
		if disabled, err = strconv.ParseBool(d); err != nil {
			err = &paramError{Param: "disabled", Msg: fmt.Sprintf("disabled: %q is not true or false", d)}
		} else if err = s.access.SetDisabled(ctx, actor(c), email, disabled); err == nil {
			done = append(done, map[bool]string{true: "disabled", false: "enabled"}[disabled])
		}
	}
	switch {
	case errors.Is(err, access.ErrUnknownUser):
		return errNotFound(fmt.Sprintf("There is no user %q.", email))
	case err != nil:
		v.Error = fmt.Sprintf("%s was not changed: %s", email, s.errorText(c, "admin: change user", err))
		return s.renderUsers(c, http.StatusBadRequest, v)
	case len(done) == 0:
		v.Error = "Nothing to change: send role or disabled."
		return s.renderUsers(c, http.StatusBadRequest, v)
	}
	v.Notice = fmt.Sprintf("%s: %s.", email, strings.Join(done, ", "))
	return s.renderUsers(c, http.StatusOK, v)
}

// adminAudit shows the audit log (GET /admin/audit): filters actor and target (contained),
// action (equal), from and to (days YYYY-MM-DD in the report time zone, inclusive) and page
// (1-based), newest first, auditPageSize entries a page.
func (s *Server) adminAudit(c *gin.Context) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	loc, _ := loadZone(s.reportTZ(c))
	q := access.AuditQuery{Actor: c.Query("actor"), Action: c.Query("action"), Target: c.Query("target"), Limit: auditPageSize}
	day := func(param string) (time.Time, error) {
		v := c.Query(param)
		if v == "" {
			return time.Time{}, nil
		}
		d, err := time.ParseInLocation(dateLayout, v, loc)
		if err != nil {
			return time.Time{}, badParam(param, v, "a date YYYY-MM-DD is expected")
		}
		return d, nil
	}
	var err error
	if q.From, err = day("from"); err != nil {
		return err
	}
	to, err := day("to")
	if err != nil {
		return err
	}
	if !to.IsZero() {
		q.To = to.AddDate(0, 0, 1) // inclusive day
	}
	page := 1
	if p := c.Query("page"); p != "" {
		if page, err = strconv.Atoi(p); err != nil || page < 1 || page > 100_000 {
			return badParam("page", p, "a page number from 1 is expected")
		}
	}
	q.Offset = (page - 1) * auditPageSize
	ctx := c.Request.Context()
	entries, total, err := s.access.AuditLog(ctx, q)
	if err != nil {
		return err
	}
	actions, err := s.access.AuditActions(ctx)
	if err != nil {
		return err
	}
	v := views.AdminAuditView{Page: s.page(c, "Audit log", "admin"), Actor: q.Actor, Action: q.Action, Target: q.Target,
		From: c.Query("from"), To: c.Query("to"), Actions: actions}
	auditRow := func(e access.AuditEntry) views.AuditRow {
		return views.AuditRow{At: e.At.In(loc).Format("2006-01-02 15:04:05"), Actor: e.Actor, Action: e.Action,
			Target: e.Target, Detail: e.Detail, IP: e.IP}
	}
	for _, e := range entries {
		v.Rows = append(v.Rows, auditRow(e))
	}
	switch {
	case len(entries) == 0:
		v.Summary = "No entries"
	default:
		v.Summary = fmt.Sprintf("Entries %s–%s of %s", views.FormatNumber(float64(q.Offset+1), 0),
			views.FormatNumber(float64(q.Offset+len(entries)), 0), views.FormatNumber(float64(total), 0))
	}
	pageURL := func(p int) string {
		u := *c.Request.URL
		qs := u.Query()
		qs.Del("page")
		if p > 1 {
			qs.Set("page", strconv.Itoa(p))
		}
		u.RawQuery = qs.Encode()
		return u.RequestURI()
	}
	if page > 1 {
		v.NewerURL = pageURL(page - 1)
	}
	if q.Offset+len(entries) < total {
		v.OlderURL = pageURL(page + 1)
	}
	c.Header("Cache-Control", "no-store")
	all := tableStream{id: "audit", note: "(every entry that matches the filters, not only this page)", grid: func() views.Grid {
		return views.Grid{Head: views.AuditHead, Rows: paged(streamPageSize, func(offset, limit int) ([]access.AuditEntry, error) {
			aq := q
			aq.Offset, aq.Limit = offset, limit
			list, _, err := s.access.AuditLog(ctx, aq)
			return list, err
		}, func(e access.AuditEntry) []string { return auditRow(e).Cells() })}
	}}
	return s.renderTables(c, http.StatusOK, &v, func() templ.Component { return views.AdminAudit(v) }, all)
}
