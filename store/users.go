package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User key layout.
const (
	kUser        = "user/"             // + id -> User
	kUserEmail   = "useremail/"        // + kp(email) -> user id (unique)
	kUsers       = "idx/users"         // index: every user id
	kDomainUsers = "idx/domainusers/"  // + kp(email domain) -> user ids
	kIdentity    = "identity/"         // + identKey -> Identity
	kUserIdents  = "idx/useridentity/" // + userID -> identKeys
)

// identKey is the unique key part of an (issuer, subject) pair.
func identKey(issuer, subject string) string { return kp(issuer) + "/" + kp(subject) }

// validEmail accepts a stored-form email with exactly one '@' and both parts.
func validEmail(email string) bool {
	at := strings.IndexByte(email, '@')
	return at > 0 && at < len(email)-1 && strings.Count(email, "@") == 1 &&
		!strings.ContainsAny(email, " \t\r\n")
}

// CreateUser stores a new user. The email is stored lower-case and is unique
// (ErrAlreadyExists). ID and CreatedAt are assigned when empty.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	u.Email = normEmail(u.Email)
	if !validEmail(u.Email) {
		return fmt.Errorf("store: create user: %w", invalidf("bad email %q", u.Email))
	}
	if u.ID == "" {
		u.ID = newSortableID(s.Now())
	}
	if !validID(u.ID) {
		return fmt.Errorf("store: create user: %w", invalidf("bad id %q", u.ID))
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.Now().UTC()
	}
	rec := *u
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := claimRef(tx, kUserEmail+kp(rec.Email), rec.ID); err != nil {
			if errors.Is(err, ErrAlreadyExists) {
				return fmt.Errorf("email %q is taken: %w", rec.Email, err)
			}
			return err
		}
		if err := create(tx, kUser+rec.ID, &rec, 0); err != nil {
			return err
		}
		if err := tx.IndexAdd(kUsers, rec.ID); err != nil {
			return err
		}
		return tx.IndexAdd(kDomainUsers+kp(emailDomain(rec.Email)), rec.ID)
	})
	if err != nil {
		return fmt.Errorf("store: create user %s: %w", u.Email, err)
	}
	return nil
}

// GetUser reads one user.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	var u User
	if err := s.b.View(ctx, func(tx Reader) error { return getJSON(tx, kUser+id, &u) }); err != nil {
		return nil, fmt.Errorf("store: get user %s: %w", id, err)
	}
	return &u, nil
}

// GetUserByRef finds a user by email (a reference containing "@") or by ID.
func (s *Store) GetUserByRef(ctx context.Context, ref string) (*User, error) {
	if strings.Contains(ref, "@") {
		return s.GetUserByEmail(ctx, ref)
	}
	return s.GetUser(ctx, ref)
}

// GetUserByEmail finds a user by email (case-insensitive).
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := s.b.View(ctx, func(tx Reader) error {
		id, err := getRef(tx, kUserEmail+kp(normEmail(email)))
		if err != nil {
			return err
		}
		return getJSON(tx, kUser+id, &u)
	})
	if err != nil {
		return nil, fmt.Errorf("store: get user by email %q: %w", email, err)
	}
	return &u, nil
}

// ListUsers lists every user, oldest first.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	return s.listUsers(ctx, kUsers)
}

// ListUsersByDomain lists the users whose email is on domain (the domain
// memberships view).
func (s *Store) ListUsersByDomain(ctx context.Context, domain string) ([]User, error) {
	return s.listUsers(ctx, kDomainUsers+kp(normDomain(domain)))
}

func (s *Store) listUsers(ctx context.Context, index string) ([]User, error) {
	var out []User
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[User](tx, index, func(id string) string { return kUser + id })
		sortByCreated(out, func(u *User) (time.Time, string) { return u.CreatedAt, u.ID })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return out, nil
}

// UpdateUser reads, changes and writes a user in one transaction. An email
// change moves the unique key in the same transaction and fails with
// ErrAlreadyExists if the new email is taken.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*User) error) (*User, error) {
	var out *User
	err := s.b.Update(ctx, func(tx Txn) error {
		old, cur, err := getTwice[User](tx, kUser+id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		cur.Email = normEmail(cur.Email)
		if cur.ID != old.ID {
			return invalidf("the id of a user cannot change")
		}
		if !validEmail(cur.Email) {
			return invalidf("bad email %q", cur.Email)
		}
		if cur.Email != old.Email {
			if err := moveRef(tx, kUserEmail+kp(old.Email), kUserEmail+kp(cur.Email), id); err != nil {
				if errors.Is(err, ErrAlreadyExists) {
					return fmt.Errorf("email %q is taken: %w", cur.Email, err)
				}
				return err
			}
			if err := tx.IndexRemove(kDomainUsers+kp(emailDomain(old.Email)), id); err != nil {
				return err
			}
			if err := tx.IndexAdd(kDomainUsers+kp(emailDomain(cur.Email)), id); err != nil {
				return err
			}
		}
		out = cur
		return putJSON(tx, kUser+id, cur, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update user %s: %w", id, err)
	}
	return out, nil
}

// DeleteUser removes a user with everything that hangs off it: its email
// key, identities, memberships (and their SCIM keys and group seats) and
// sessions. It returns the removed session IDs so the caller can tell other
// instances to drop them.
func (s *Store) DeleteUser(ctx context.Context, id string) ([]string, error) {
	now := s.Now().UTC()
	var sessions []string
	err := s.b.Update(ctx, func(tx Txn) error {
		var u User
		if err := getJSON(tx, kUser+id, &u); err != nil {
			return err
		}
		if err := releaseRef(tx, kUserEmail+kp(u.Email), id); err != nil {
			return err
		}
		idents, err := tx.IndexRange(kUserIdents+id, "", 0)
		if err != nil {
			return err
		}
		for _, k := range idents {
			if err := tx.Delete(kIdentity + k); err != nil {
				return err
			}
			if err := tx.IndexRemove(kUserIdents+id, k); err != nil {
				return err
			}
		}
		orgs, err := tx.IndexRange(kUserOrgs+id, "", 0)
		if err != nil {
			return err
		}
		for _, orgID := range orgs {
			if err := deleteMembership(tx, orgID, id, now); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if sessions, err = deleteUserSessions(tx, id); err != nil {
			return err
		}
		if err := tx.Delete(kUser + id); err != nil {
			return err
		}
		if err := tx.IndexRemove(kUsers, id); err != nil {
			return err
		}
		return tx.IndexRemove(kDomainUsers+kp(emailDomain(u.Email)), id)
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete user %s: %w", id, err)
	}
	return sessions, nil
}

// deleteUserSessions removes every session of a user inside tx.
func deleteUserSessions(tx Txn, userID string) ([]string, error) {
	ids, err := tx.IndexRange(kUserSessions+userID, "", 0)
	if err != nil {
		return nil, err
	}
	for _, sid := range ids {
		if err := tx.Delete(kSession + sid); err != nil {
			return nil, err
		}
		if err := tx.IndexRemove(kUserSessions+userID, sid); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// LinkIdentity ties an IdP (issuer, subject) to a user. The pair is unique:
// linking it to a second user is ErrAlreadyExists; linking it again to the
// same user is a no-op.
func (s *Store) LinkIdentity(ctx context.Context, id Identity) error {
	if id.Issuer == "" || id.Subject == "" {
		return fmt.Errorf("store: link identity: %w", invalidf("issuer and subject are required"))
	}
	k := identKey(id.Issuer, id.Subject)
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := mustExist(tx, kUser+id.UserID, "user", id.UserID); err != nil {
			return err
		}
		var cur Identity
		err := getJSON(tx, kIdentity+k, &cur)
		switch {
		case err == nil && cur.UserID == id.UserID:
			return nil
		case err == nil:
			return fmt.Errorf("identity is linked to another user: %w", ErrAlreadyExists)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := putJSON(tx, kIdentity+k, &id, 0); err != nil {
			return err
		}
		return tx.IndexAdd(kUserIdents+id.UserID, k)
	})
	if err != nil {
		return fmt.Errorf("store: link identity %s / %s: %w", id.Issuer, id.Subject, err)
	}
	return nil
}

// UnlinkIdentity removes an (issuer, subject) link (ErrNotFound if absent).
func (s *Store) UnlinkIdentity(ctx context.Context, issuer, subject string) error {
	k := identKey(issuer, subject)
	err := s.b.Update(ctx, func(tx Txn) error {
		var cur Identity
		if err := getJSON(tx, kIdentity+k, &cur); err != nil {
			return err
		}
		if err := tx.Delete(kIdentity + k); err != nil {
			return err
		}
		return tx.IndexRemove(kUserIdents+cur.UserID, k)
	})
	if err != nil {
		return fmt.Errorf("store: unlink identity %s / %s: %w", issuer, subject, err)
	}
	return nil
}

// UserByIdentity finds the user an IdP (issuer, subject) is linked to.
func (s *Store) UserByIdentity(ctx context.Context, issuer, subject string) (*User, error) {
	var u User
	err := s.b.View(ctx, func(tx Reader) error {
		var id Identity
		if err := getJSON(tx, kIdentity+identKey(issuer, subject), &id); err != nil {
			return err
		}
		return getJSON(tx, kUser+id.UserID, &u)
	})
	if err != nil {
		return nil, fmt.Errorf("store: user by identity %s / %s: %w", issuer, subject, err)
	}
	return &u, nil
}

// ListIdentities lists the IdP identities linked to a user.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]Identity, error) {
	var out []Identity
	err := s.b.View(ctx, func(tx Reader) (err error) {
		out, err = listIndexed[Identity](tx, kUserIdents+userID, func(k string) string { return kIdentity + k })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list identities of %s: %w", userID, err)
	}
	return out, nil
}
