package access

import (
	"strings"
	"testing"
)

// Small parameters keep the tests fast; the format and the checks are the same.
var testHash = HashParams{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery", DefaultHashParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(h, "$") != 5 {
		t.Fatalf("not a PHC argon2id string with the default parameters: %q", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("the hash contains the password")
	}
	h2, _ := HashPassword("correct horse battery", DefaultHashParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
		{"correct horse battery ", false},
	} {
		ok, err := VerifyPassword(tc.pw, h)
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	if NeedsRehash(h, DefaultHashParams) || !NeedsRehash(h, testHash) {
		t.Error("NeedsRehash does not compare the parameters")
	}
}

func TestVerifyPasswordRefusesBadHashes(t *testing.T) {
	good, _ := HashPassword("some password!", testHash)
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuv",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"version":        strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":    strings.Join([]string{"", parts[1], parts[2], "m=4194304,t=1,p=1", parts[4], parts[5]}, "$"),
		"zero time":      strings.Join([]string{"", parts[1], parts[2], "m=1024,t=0,p=1", parts[4], parts[5]}, "$"),
		"salt not b64":   strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$"),
		"short key":      strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"missing fields": "$argon2id$v=19$m=1024,t=1,p=1$" + parts[4],
	} {
		if ok, err := VerifyPassword("some password!", h); ok || err == nil {
			t.Errorf("%s: VerifyPassword = %v, %v; want false and an error", name, ok, err)
		}
	}
}

func TestValidatePasswordAndEmail(t *testing.T) {
	if err := ValidatePassword("short"); err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Errorf("short password: %v", err)
	}
	if err := ValidatePassword(strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Error("an overlong password is accepted")
	}
	if err := ValidatePassword("ten chars!"); err != nil {
		t.Errorf("a 10-character password is refused: %v", err)
	}
	for _, e := range []string{"admin@localhost", "a.b+c@example.com"} {
		if err := ValidateEmail(e); err != nil {
			t.Errorf("ValidateEmail(%q): %v", e, err)
		}
	}
	for _, e := range []string{"", "admin", "@x", "a@", "a b@x", "a@b@c", "<a@b>"} {
		if ValidateEmail(e) == nil {
			t.Errorf("ValidateEmail(%q) accepted", e)
		}
	}
	if NormalizeEmail("  Ann@Example.COM ") != "ann@example.com" {
		t.Error("NormalizeEmail")
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		have, need Role
		want       bool
	}{
		{RoleExecutive, Public, true}, {RoleExecutive, RoleExecutive, true}, {RoleExecutive, RoleFinance, false},
		{RoleFinance, RoleExecutive, true}, {RoleFinance, RoleAnalyst, false}, {RoleAnalyst, RoleFinance, true},
		{RoleAnalyst, RoleAdmin, false}, {RoleAdmin, RoleAnalyst, true}, {Public, RoleExecutive, false},
	} {
		if got := tc.have.Includes(tc.need); got != tc.want {
			t.Errorf("%s.Includes(%s) = %v", tc.have, tc.need, got)
		}
	}
	for _, tc := range []struct {
		r     Role
		roles []string
		want  bool
	}{
		{RoleExecutive, nil, true}, {RoleExecutive, []string{"finance"}, false}, {RoleFinance, []string{"finance"}, true},
		{RoleAnalyst, []string{"finance"}, false}, {RoleAdmin, []string{"finance"}, true}, {Public, []string{"executive"}, false},
	} {
		if got := tc.r.Sees(tc.roles); got != tc.want {
			t.Errorf("%s.Sees(%v) = %v", tc.r, tc.roles, got)
		}
	}
	if r, err := ParseRole(" Finance "); err != nil || r != RoleFinance {
		t.Errorf("ParseRole: %v %v", r, err)
	}
	for _, bad := range []string{"public", "viewer", ""} {
		if _, err := ParseRole(bad); err == nil || !strings.Contains(err.Error(), "executive, finance, analyst, admin") {
			t.Errorf("ParseRole(%q): %v", bad, err)
		}
	}
}
