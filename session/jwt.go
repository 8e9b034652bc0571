package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ssogate/ssogate/store"
)

// KeyRing signs the identity JWT sent upstream with ES256 keys kept in the
// store, so every instance signs with the same keys and publishes the same
// JWKS. A new key is published an hour before it is used to sign, so
// upstreams that cache the JWKS always know it in time.
type KeyRing struct {
	st          *store.Store
	rotateEvery time.Duration
	now         func() time.Time

	mu       sync.RWMutex
	keys     []ringKey
	loadedAt time.Time
	signer   jose.Signer
	signKID  string
	jwks     []byte
}

type ringKey struct {
	KID      string    `json:"kid"`
	Created  time.Time `json:"created"`
	SignFrom time.Time `json:"sign_from"`
	DER      []byte    `json:"der"` // PKCS#8 private key
	priv     *ecdsa.PrivateKey
}

const (
	settingJWTKeys = "jwt-keys"
	publishAhead   = time.Hour
	keepRetired    = 24 * time.Hour
	reloadEvery    = 5 * time.Minute
)

// NewKeyRing loads (or creates) the signing keys.
func NewKeyRing(ctx context.Context, st *store.Store, rotateEvery time.Duration) (*KeyRing, error) {
	if rotateEvery <= 0 {
		rotateEvery = 7 * 24 * time.Hour
	}
	kr := &KeyRing{st: st, rotateEvery: rotateEvery, now: time.Now}
	if err := kr.reload(ctx); err != nil {
		return nil, err
	}
	return kr, nil
}

// reload rotates keys in the store when due, then rebuilds the signer.
func (kr *KeyRing) reload(ctx context.Context) error {
	now := kr.now()
	raw, err := kr.st.UpdateSetting(ctx, settingJWTKeys, func(old []byte, exists bool) ([]byte, error) {
		var keys []ringKey
		if exists {
			if err := json.Unmarshal(old, &keys); err != nil {
				return nil, fmt.Errorf("decoding jwt keys: %w", err)
			}
		}
		changed := false
		kept := keys[:0]
		for i, k := range keys {
			// A key retires when a newer one signs; drop it a day later.
			if i+1 < len(keys) && now.After(keys[i+1].SignFrom.Add(keepRetired)) {
				changed = true
				continue
			}
			kept = append(kept, k)
		}
		keys = kept
		if len(keys) == 0 || now.Sub(keys[len(keys)-1].Created) > kr.rotateEvery-publishAhead {
			signFrom := now.Add(publishAhead)
			if len(keys) == 0 {
				signFrom = now
			}
			k, err := newRingKey(now, signFrom)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
			changed = true
		}
		if !changed {
			return old, nil
		}
		return json.Marshal(keys)
	})
	if err != nil {
		return fmt.Errorf("session: loading jwt keys: %w", err)
	}
	var keys []ringKey
	if err := json.Unmarshal(raw, &keys); err != nil {
		return fmt.Errorf("session: decoding jwt keys: %w", err)
	}
	set := jose.JSONWebKeySet{}
	var signing *ringKey
	for i := range keys {
		k := &keys[i]
		p, err := x509.ParsePKCS8PrivateKey(k.DER)
		if err != nil {
			return fmt.Errorf("session: parsing jwt key %s: %w", k.KID, err)
		}
		ec, ok := p.(*ecdsa.PrivateKey)
		if !ok {
			return fmt.Errorf("session: jwt key %s is not ECDSA", k.KID)
		}
		k.priv = ec
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: k.KID, Algorithm: string(jose.ES256), Use: "sig"})
		if !now.Before(k.SignFrom) {
			signing = k
		}
	}
	if signing == nil {
		signing = &keys[0]
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: signing.priv, KeyID: signing.KID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return fmt.Errorf("session: building jwt signer: %w", err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("session: encoding jwks: %w", err)
	}
	kr.mu.Lock()
	kr.keys, kr.signer, kr.signKID, kr.jwks, kr.loadedAt = keys, signer, signing.KID, jwks, now
	kr.mu.Unlock()
	return nil
}

func newRingKey(now, signFrom time.Time) (ringKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ringKey{}, fmt.Errorf("generating jwt key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return ringKey{}, fmt.Errorf("encoding jwt key: %w", err)
	}
	return ringKey{KID: store.NewID()[:16], Created: now, SignFrom: signFrom, DER: der}, nil
}

// maybeReload picks up rotations made by this or other instances.
func (kr *KeyRing) maybeReload(ctx context.Context) error {
	kr.mu.RLock()
	due := kr.now().Sub(kr.loadedAt) > reloadEvery
	kr.mu.RUnlock()
	if !due {
		return nil
	}
	return kr.reload(ctx)
}

// JWKS returns the public keys as a JSON Web Key Set.
func (kr *KeyRing) JWKS() []byte {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.jwks
}

// Claims are what the upstream app receives in X-Ssogate-Jwt-Assertion.
type Claims struct {
	jwt.Claims
	Email  string   `json:"email"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Orgs   []string `json:"orgs,omitempty"` // slug:role
	SID    string   `json:"sid,omitempty"`
}

// Sign signs claims with the current key.
func (kr *KeyRing) Sign(c *Claims) (string, error) {
	kr.mu.RLock()
	signer := kr.signer
	kr.mu.RUnlock()
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("session: signing jwt: %w", err)
	}
	return tok, nil
}

// Verify checks a token against the published keys (used by tests and the
// demo app; upstreams verify with the JWKS).
func (kr *KeyRing) Verify(token, audience string, now time.Time) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("session: parsing jwt: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(kr.JWKS(), &set); err != nil {
		return nil, fmt.Errorf("session: decoding jwks: %w", err)
	}
	var c Claims
	if err := tok.Claims(&set, &c); err != nil {
		return nil, fmt.Errorf("session: verifying jwt: %w", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: Issuer, AnyAudience: jwt.Audience{audience}, Time: now}, 0); err != nil {
		return nil, fmt.Errorf("session: validating jwt: %w", err)
	}
	return &c, nil
}

// Issuer is the iss claim of identity JWTs.
const Issuer = "ssogate"

func jwtTime(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }
