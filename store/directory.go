package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Directory errors, besides the backend sentinels in backend.go.
var (
	// ErrInvalid means the input breaks a rule of the directory (a missing
	// name, a malformed ID, a field that may not change). Nothing was written.
	ErrInvalid = errors.New("invalid input")
	// ErrDomainClaimed means another parent org has already verified the domain.
	ErrDomainClaimed = errors.New("domain already verified by another parent organization")
	// ErrMergeConflict means a merge proposal cannot be applied as it stands
	// (wrong state, missing approval, overlapping domain claims, ...).
	ErrMergeConflict = errors.New("merge conflict")
)

// Directory key layout. Every key and index name the directory uses is built
// from these prefixes; free-form parts (emails, issuers, SCIM names) go
// through kp so they can never forge a separator.
const (
	kParent  = "parent/"     // + id -> ParentOrg
	kParents = "idx/parents" // index: every parent org id

	kOrg        = "org/"            // + id -> Org
	kOrgSlug    = "orgslug/"        // + kp(slug) -> org id (unique)
	kOrgs       = "idx/orgs"        // index: every org id
	kParentOrgs = "idx/parentorgs/" // + parentID -> org ids

	kConn        = "conn/"            // + id -> connRecord
	kParentConns = "idx/parentconns/" // + parentID -> connection ids
)

// kp escapes one free-form component of a key or index name.
func kp(s string) string { return url.QueryEscape(s) }

// validID reports whether id can be used as a key component as it is.
func validID(id string) bool {
	return id != "" && len(id) <= 200 && !strings.ContainsAny(id, "/ \t\r\n")
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// getRef reads a pointer key (a unique name -> an id).
func getRef(r Reader, key string) (string, error) {
	raw, err := r.Get(key)
	if err != nil {
		return "", err
	}
	return string(raw), nil
}

// exists reports whether key is present.
func exists(r Reader, key string) (bool, error) {
	_, err := r.Get(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// mustExist checks that a record another one refers to is there.
func mustExist(r Reader, key, what, id string) error {
	if _, err := r.Get(key); err != nil {
		return fmt.Errorf("%s %q: %w", what, id, err)
	}
	return nil
}

// claimRef points key at id unless it already points at another id
// (ErrAlreadyExists).
func claimRef(tx Txn, key, id string) error {
	cur, err := getRef(tx, key)
	switch {
	case err == nil && cur == id:
		return nil
	case err == nil:
		return ErrAlreadyExists
	case !errors.Is(err, ErrNotFound):
		return err
	}
	return tx.Put(key, []byte(id), 0)
}

// releaseRef deletes key if it points at id, and leaves it alone otherwise.
func releaseRef(tx Txn, key, id string) error {
	cur, err := getRef(tx, key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur != id {
		return nil
	}
	return tx.Delete(key)
}

// moveRef re-points a unique name when it changes: claim the new one first so
// a taken name fails before anything else moves.
func moveRef(tx Txn, oldKey, newKey, id string) error {
	if oldKey == newKey {
		return nil
	}
	if newKey != "" {
		if err := claimRef(tx, newKey, id); err != nil {
			return err
		}
	}
	if oldKey != "" {
		return releaseRef(tx, oldKey, id)
	}
	return nil
}

// listIndexed loads the record behind every member of an index, in index
// order. Members whose record has gone are skipped.
func listIndexed[T any](r Reader, index string, key func(member string) string) ([]T, error) {
	members, err := r.IndexRange(index, "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(members))
	for _, m := range members {
		var v T
		if err := getJSON(r, key(m), &v); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// getTwice decodes one stored record into two independent values: the
// original, and a copy an update callback may change freely.
func getTwice[T any](r Reader, key string) (old, cur *T, err error) {
	raw, err := r.Get(key)
	if err != nil {
		return nil, nil, err
	}
	old, cur = new(T), new(T)
	if err := json.Unmarshal(raw, old); err != nil {
		return nil, nil, fmt.Errorf("store: decoding %q: %w", key, err)
	}
	if err := json.Unmarshal(raw, cur); err != nil {
		return nil, nil, fmt.Errorf("store: decoding %q: %w", key, err)
	}
	return old, cur, nil
}

// sortByCreated orders records oldest first, then by ID. Index order is ID
// order, which is not creation order for IDs given by callers.
func sortByCreated[T any](list []T, key func(*T) (time.Time, string)) {
	slices.SortStableFunc(list, func(a, b T) int {
		ta, ia := key(&a)
		tb, ib := key(&b)
		return cmp.Or(ta.Compare(tb), strings.Compare(ia, ib))
	})
}

// normEmail is the stored form of an email address.
func normEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// normDomain is the stored form of a domain name (callers normalise IDNs to
// punycode first; this only folds case and a trailing dot).
func normDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// emailDomain returns the domain part of a stored email, or "".
func emailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	return email[at+1:]
}
