package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrBadCookie means the cookie value is malformed or its tag is wrong.
var ErrBadCookie = errors.New("session: malformed or tampered cookie")

const (
	rawIDLen = 32 // 256 bits of randomness
	tagLen   = 16
)

var b64 = base64.RawURLEncoding

// newCookieValue returns a fresh cookie value "<id>.<tag>" and the store ID
// (the hash of the raw ID) it maps to.
func newCookieValue(key []byte) (cookie, storeID string, err error) {
	var raw [rawIDLen]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("session: reading randomness: %w", err)
	}
	id := b64.EncodeToString(raw[:])
	return id + "." + tag(key, id), storeIDOf(raw[:]), nil
}

// parseCookieValue checks the tag in constant time and returns the store ID.
func parseCookieValue(key []byte, value string) (string, error) {
	id, t, ok := strings.Cut(value, ".")
	if !ok || len(id) != b64.EncodedLen(rawIDLen) || len(t) != b64.EncodedLen(tagLen) {
		return "", ErrBadCookie
	}
	if !hmac.Equal([]byte(t), []byte(tag(key, id))) {
		return "", ErrBadCookie
	}
	raw, err := b64.DecodeString(id)
	if err != nil {
		return "", ErrBadCookie
	}
	return storeIDOf(raw), nil
}

func tag(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ssogate-session-v1\x00"))
	m.Write([]byte(id))
	return b64.EncodeToString(m.Sum(nil)[:tagLen])
}

// storeIDOf hashes the raw ID: a dump of the store holds no usable cookie.
func storeIDOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return b64.EncodeToString(sum[:])
}

// CookieKeyPurpose is the DeriveKey purpose of the session cookie key.
const CookieKeyPurpose = "session-cookie"

// DeriveKey gives each use of the master secret its own key.
func DeriveKey(secret []byte, purpose string) []byte {
	h := sha256.New()
	h.Write([]byte("ssogate/v1/"))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(secret)
	return h.Sum(nil)
}
