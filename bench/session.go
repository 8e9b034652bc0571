package main

import (
	"context"
	"fmt"

	"github.com/ssogate/ssogate/session"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/bolt"
	"github.com/ssogate/ssogate/store/redis"
)

// prepareSession writes an org, a member and a session into the store the
// gateway will open, and returns the session cookie. The cookie key is
// derived from the same secret the gateway is configured with.
func prepareSession(ctx context.Context, kind, where, secret string) (string, error) {
	var b store.Backend
	var err error
	if kind == "bolt" {
		b, err = bolt.Open(where, bolt.Options{})
	} else {
		b, err = redis.Open(where, redis.Options{})
	}
	if err != nil {
		return "", err
	}
	defer b.Close()
	st := store.New(b)
	p := &store.ParentOrg{Name: "Bench"}
	if err := st.CreateParentOrg(ctx, p); err != nil {
		return "", fmt.Errorf("parent org: %w", err)
	}
	o := &store.Org{Slug: "bench", Name: "Bench", ParentID: p.ID}
	if err := st.CreateOrg(ctx, o); err != nil {
		return "", fmt.Errorf("org: %w", err)
	}
	u := &store.User{Email: "bench@bench.example", Name: "Bench User", IdPGroups: []string{"ssogate-bench-member"}}
	if err := st.CreateUser(ctx, u); err != nil {
		return "", fmt.Errorf("user: %w", err)
	}
	if err := st.PutMembership(ctx, &store.Membership{OrgID: o.ID, UserID: u.ID, Role: store.RoleMember, Status: store.MemberActive}); err != nil {
		return "", fmt.Errorf("membership: %w", err)
	}
	m := session.NewManager(st, session.DeriveKey([]byte(secret), session.CookieKeyPurpose), nil, session.Config{}, nil)
	cookie, _, err := m.Issue(ctx, u, session.IssueMeta{Method: "bench"})
	if err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	return cookie, nil
}
