package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id's cost parameters.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultHashParams follow OWASP's password storage cheat sheet for argon2id (19 MiB, 2 passes,
// 1 lane): about 30 ms a hash on one core, and 19 MiB per concurrent sign-in.
var DefaultHashParams = HashParams{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds of the parameters a stored hash may carry, so a tampered row cannot make a sign-in
// allocate without limit.
const (
	maxHashMemory  = 1 << 20 // KiB: 1 GiB
	maxHashTime    = 32
	maxHashThreads = 64
)

// Password length limits (in characters; the upper one bounds the work per sign-in).
const (
	MinPasswordLen = 10
	MaxPasswordLen = 1024
)

// ValidatePassword refuses a password that is too short or too long.
func ValidatePassword(p string) error {
	switch n := utf8.RuneCountInString(p); {
	case n < MinPasswordLen:
		return invalid("password", "the password has %d characters; use at least %d", n, MinPasswordLen)
	case n > MaxPasswordLen:
		return invalid("password", "the password is longer than %d characters", MaxPasswordLen)
	}
	return nil
}

// HashPassword hashes password with argon2id and a random salt, in PHC string format:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
func HashPassword(password string, p HashParams) (string, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.SaltLen < 8 || p.KeyLen < 16 {
		return "", fmt.Errorf("access: argon2id parameters %+v are too weak", p)
	}
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errBadHash is a stored hash that is not an argon2id PHC string converge can check.
var errBadHash = errors.New("access: not an argon2id PHC string")

type phc struct {
	p         HashParams
	salt, key []byte
}

func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return phc{}, fmt.Errorf("%w: version %q", errBadHash, parts[2])
	}
	var h phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.p.Memory, &h.p.Time, &h.p.Threads); err != nil {
		return phc{}, fmt.Errorf("%w: parameters %q", errBadHash, parts[3])
	}
	if h.p.Memory == 0 || h.p.Memory > maxHashMemory || h.p.Time == 0 || h.p.Time > maxHashTime ||
		h.p.Threads == 0 || h.p.Threads > maxHashThreads {
		return phc{}, fmt.Errorf("%w: parameters %q out of bounds", errBadHash, parts[3])
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return phc{}, fmt.Errorf("%w: salt", errBadHash)
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 128 {
		return phc{}, fmt.Errorf("%w: hash", errBadHash)
	}
	h.p.SaltLen, h.p.KeyLen = uint32(len(h.salt)), uint32(len(h.key))
	return h, nil
}

// VerifyPassword reports whether password matches the PHC string hash, comparing in constant
// time. A hash it cannot read is an error (and no match).
func VerifyPassword(password, hash string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// NeedsRehash reports whether hash was made with parameters other than p (it is then replaced
// at the next successful sign-in).
func NeedsRehash(hash string, p HashParams) bool {
	h, err := parsePHC(hash)
	return err != nil || h.p != p
}

// GeneratePassword returns a random password of 24 characters (144 bits).
func GeneratePassword() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
