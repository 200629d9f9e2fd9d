package views

// LoginView is the sign-in page's view model. Page.CSRF is the form's token.
type LoginView struct {
	Page  Page
	Email string // as typed, after a failure
	Next  string // where to go after signing in (a path), "" for the overview
	// Notice (session expired, signed out), Error (wrong password, too many attempts) and
	// Warning (a Secure cookie over plain HTTP) are shown above the form.
	Notice, Error, Warning string
}

// UserRow is one user on the users page.
type UserRow struct {
	Email, Name, Role string
	Disabled          bool
	Created           string // date in the report time zone
	ActionURL         string // where its forms post
}

// UserForm is the add-a-user form's values, kept after a refusal.
type UserForm struct {
	Email, Name, Role string
}

// AdminUsersView is the users page.
type AdminUsersView struct {
	Page  Page
	Users []UserRow
	Roles []string // in order
	Form  UserForm
	// Error is why the last change was refused; Notice what it did.
	Error, Notice string
	// NewPassword is a generated password, shown once, of NewPasswordFor.
	NewPassword, NewPasswordFor string
	// Download offers the users table as a file (empty: no links).
	Download Download
}

// AuditRow is one audit log entry, formatted.
type AuditRow struct {
	At, Actor, Action, Target, Detail, IP string
}

// AdminAuditView is the audit log page.
type AdminAuditView struct {
	Page Page
	// The filters, as in the URL.
	Actor, Action, Target, From, To string
	Actions                         []string // known actions, for the select
	Rows                            []AuditRow
	// Summary says which entries are shown ("Entries 1–50 of 1,234").
	Summary string
	// NewerURL and OlderURL are the neighbouring pages ("" at either end).
	NewerURL, OlderURL string
	// Download offers the entries as a file (empty: no links).
	Download Download
}
