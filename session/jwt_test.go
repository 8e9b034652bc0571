package session

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func jwksKIDs(t *testing.T, kr *KeyRing) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(kr.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		if k.Algorithm != "ES256" || k.Use != "sig" || !k.IsPublic() {
			t.Fatalf("JWKS key %+v: want a public ES256 signing key", k)
		}
		ids = append(ids, k.KeyID)
	}
	return ids
}

func signedKID(t *testing.T, kr *KeyRing) string {
	t.Helper()
	c := &Claims{Email: "a@b.c"}
	c.Issuer = Issuer
	tok, err := kr.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return p.Headers[0].KeyID
}

// Keys rotate: a new key is published an hour before it signs, and the
// old one stays published for a day after it stops signing.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	kr, err := NewKeyRing(ctx, f.st, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kr.now = f.clk.Now
	first := jwksKIDs(t, kr)
	if len(first) != 1 || signedKID(t, kr) != first[0] {
		t.Fatalf("initial keys %v", first)
	}
	f.clk.Add(47*time.Hour + time.Second)
	if err := kr.reload(ctx); err != nil {
		t.Fatal(err)
	}
	both := jwksKIDs(t, kr)
	if len(both) != 2 || signedKID(t, kr) != first[0] {
		t.Fatalf("after 47h: published %v, signing with %s; want the new key published, the old one signing", both, signedKID(t, kr))
	}
	f.clk.Add(time.Hour)
	if err := kr.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if signedKID(t, kr) != both[1] {
		t.Fatal("the new key does not sign after the publish-ahead hour")
	}
	// A second instance on the same store agrees.
	other, err := NewKeyRing(ctx, f.st, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other.now = f.clk.Now
	if err := other.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if signedKID(t, other) != both[1] || len(jwksKIDs(t, other)) != 2 {
		t.Fatal("instances disagree on the signing key")
	}
	f.clk.Add(25 * time.Hour)
	if err := kr.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := jwksKIDs(t, kr); len(ids) != 1 || ids[0] != both[1] {
		t.Fatalf("a day after retiring, published %v; want only %s", ids, both[1])
	}
}
