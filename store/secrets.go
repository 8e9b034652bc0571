package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Bearer secrets (SCIM tokens, admin API keys). Only the SHA-256 of a
// secret is stored; a presented secret is hashed and looked up by that
// hash, so no stored secret is ever compared byte by byte.
const (
	kSecret     = "secret/"      // + hash -> stored secret record
	kSecretByID = "secretid/"    // + id -> hash
	kSecretIdx  = "idx/secrets/" // index: + kind + "/" + ownerID -> ids
)

// Secret kinds.
const (
	SecretSCIM = "scim" // owned by an org (OrgID)
	SecretAPI  = "api"  // owned by a parent org (ParentID)
)

// secretBytes is the entropy of a new secret: 256 bits.
const secretBytes = 32

// storedSecret is a SecretRecord as kept in the store: with its hash,
// which SecretRecord's JSON form leaves out.
type storedSecret struct {
	SecretRecord
	Hash string `json:"hash"`
}

// HashSecret returns the hex SHA-256 of a secret, the form it is stored in.
// Secrets are 256 random bits, so a fast unsalted hash is enough.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns prefix followed by 256 random bits in lower-case
// base32 (52 characters). The prefix makes leaked secrets recognisable.
func NewSecret(prefix string) string {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Errorf("store: reading randomness: %w", err))
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

// secretOwner returns the owner a secret of rec's kind is scoped to.
func secretOwner(rec *SecretRecord) (string, error) {
	switch rec.Kind {
	case SecretSCIM:
		return rec.OrgID, nil
	case SecretAPI:
		return rec.ParentID, nil
	}
	return "", fmt.Errorf("store: unknown secret kind %q", rec.Kind)
}

func secretIndex(kind, ownerID string) string {
	return kSecretIdx + kind + "/" + ownerID
}

// CreateSecret stores rec, whose Hash must be set (HashSecret of the
// secret handed to the user). ID and CreatedAt are assigned if empty. It is
// ErrAlreadyExists if the hash or ID is taken.
func (s *Store) CreateSecret(ctx context.Context, rec *SecretRecord) error {
	owner, err := secretOwner(rec)
	if err != nil {
		return err
	}
	if owner == "" {
		return fmt.Errorf("store: %s secret without owner", rec.Kind)
	}
	if len(rec.Hash) != 2*sha256.Size {
		return fmt.Errorf("store: secret hash must be a hex SHA-256")
	}
	if rec.ID == "" {
		rec.ID = NewID()
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = s.Now()
	}
	err = s.b.Update(ctx, func(tx Txn) error {
		if err := create(tx, kSecret+rec.Hash, storedSecret{*rec, rec.Hash}, 0); err != nil {
			return err
		}
		if err := create(tx, kSecretByID+rec.ID, rec.Hash, 0); err != nil {
			return err
		}
		return tx.IndexAdd(secretIndex(rec.Kind, owner), rec.ID)
	})
	if err != nil {
		return fmt.Errorf("store: creating %s secret: %w", rec.Kind, err)
	}
	return nil
}

// LookupSecret returns the record of a presented secret of the given kind,
// or ErrNotFound: one Get by hash, on the hot path of every SCIM and API
// request.
func (s *Store) LookupSecret(ctx context.Context, kind, secret string) (*SecretRecord, error) {
	if secret == "" {
		return nil, fmt.Errorf("store: looking up %s secret: %w", kind, ErrNotFound)
	}
	hash := HashSecret(secret)
	raw, err := s.b.Get(ctx, kSecret+hash)
	if err != nil {
		return nil, fmt.Errorf("store: looking up %s secret: %w", kind, err)
	}
	var st storedSecret
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("store: decoding secret: %w", err)
	}
	// The key already matched; comparing again guards against a record
	// stored under the wrong key, in constant time as a matter of habit.
	if subtle.ConstantTimeCompare([]byte(st.Hash), []byte(hash)) != 1 || st.Kind != kind {
		return nil, fmt.Errorf("store: looking up %s secret: %w", kind, ErrNotFound)
	}
	rec := st.SecretRecord
	rec.Hash = st.Hash
	return &rec, nil
}

// ListSecrets lists the secrets of a kind held by one owner (an org for
// SCIM tokens, a parent org for API keys).
func (s *Store) ListSecrets(ctx context.Context, kind, ownerID string) ([]SecretRecord, error) {
	var out []SecretRecord
	err := s.b.View(ctx, func(tx Reader) error {
		out = out[:0]
		ids, err := tx.IndexRange(secretIndex(kind, ownerID), "", 0)
		if err != nil {
			return err
		}
		for _, id := range ids {
			st, err := getSecretByID(tx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			rec := st.SecretRecord
			rec.Hash = st.Hash
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing %s secrets: %w", kind, err)
	}
	return out, nil
}

// RevokeSecret deletes secret id if it is a secret of that kind held by
// ownerID; otherwise it is ErrNotFound.
func (s *Store) RevokeSecret(ctx context.Context, kind, ownerID, id string) error {
	err := s.b.Update(ctx, func(tx Txn) error {
		has, err := tx.IndexHas(secretIndex(kind, ownerID), id)
		if err != nil {
			return err
		}
		if !has {
			return ErrNotFound
		}
		return deleteSecretTx(tx, kind, ownerID, id)
	})
	if err != nil {
		return fmt.Errorf("store: revoking %s secret %q: %w", kind, id, err)
	}
	return nil
}

// RevokeAllSecrets deletes every secret of a kind held by ownerID (when
// an org or parent org goes away) and returns how many there were.
func (s *Store) RevokeAllSecrets(ctx context.Context, kind, ownerID string) (int, error) {
	var n int
	err := s.b.Update(ctx, func(tx Txn) error {
		var err error
		n, err = revokeAllSecretsTx(tx, kind, ownerID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: revoking %s secrets: %w", kind, err)
	}
	return n, nil
}

// revokeAllSecretsTx is RevokeAllSecrets inside a caller's transaction.
func revokeAllSecretsTx(tx Txn, kind, ownerID string) (int, error) {
	ids, err := tx.IndexRange(secretIndex(kind, ownerID), "", 0)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := deleteSecretTx(tx, kind, ownerID, id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// TouchSecret records that the secret with that hash was used at at.
// Callers limit how often they call it (e.g. once a minute per secret).
func (s *Store) TouchSecret(ctx context.Context, hash string, at time.Time) error {
	err := s.b.Update(ctx, func(tx Txn) error {
		var st storedSecret
		if err := getJSON(tx, kSecret+hash, &st); err != nil {
			return err
		}
		if !at.After(st.LastUsedAt) {
			return nil
		}
		st.LastUsedAt = at
		return putJSON(tx, kSecret+hash, st, 0)
	})
	if err != nil {
		return fmt.Errorf("store: touching secret: %w", err)
	}
	return nil
}

func getSecretByID(tx Reader, id string) (*storedSecret, error) {
	var hash string
	if err := getJSON(tx, kSecretByID+id, &hash); err != nil {
		return nil, err
	}
	var st storedSecret
	if err := getJSON(tx, kSecret+hash, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// deleteSecretTx removes secret id and its index entries; a dangling
// index member (record already gone) is just removed.
func deleteSecretTx(tx Txn, kind, ownerID, id string) error {
	st, err := getSecretByID(tx, id)
	switch {
	case err == nil:
		if err := tx.Delete(kSecret + st.Hash); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := tx.Delete(kSecretByID + id); err != nil {
		return err
	}
	return tx.IndexRemove(secretIndex(kind, ownerID), id)
}
