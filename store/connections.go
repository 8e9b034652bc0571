package store

import (
	"cmp"
	"context"
	"fmt"
	"time"
)

// connRecord is the stored form of a Connection: the model hides the client
// secret from JSON output, the store must keep it.
type connRecord struct {
	Connection
	ClientSecret string `json:"client_secret,omitempty"`
}

func (r *connRecord) conn() *Connection {
	c := r.Connection
	c.ClientSecret = r.ClientSecret
	return &c
}

func putConn(tx Txn, c *Connection) error {
	return putJSON(tx, kConn+c.ID, &connRecord{Connection: *c, ClientSecret: c.ClientSecret}, 0)
}

func getConn(r Reader, id string) (*Connection, error) {
	var rec connRecord
	if err := getJSON(r, kConn+id, &rec); err != nil {
		return nil, err
	}
	return rec.conn(), nil
}

// CreateConnection stores a new SSO connection of an existing parent org,
// assigning ID and CreatedAt when they are empty.
func (s *Store) CreateConnection(ctx context.Context, c *Connection) error {
	if c.ID == "" {
		c.ID = newSortableID(s.Now())
	}
	if !validID(c.ID) {
		return fmt.Errorf("store: create connection: %w", invalidf("bad id %q", c.ID))
	}
	if c.Type != ConnSAML && c.Type != ConnOIDC {
		return fmt.Errorf("store: create connection: %w", invalidf("unknown type %q", c.Type))
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.Now().UTC()
	}
	rec := *c
	err := s.b.Update(ctx, func(tx Txn) error {
		if err := mustExist(tx, kParent+rec.ParentID, "parent org", rec.ParentID); err != nil {
			return err
		}
		if ok, err := exists(tx, kConn+rec.ID); err != nil || ok {
			return cmp.Or(err, ErrAlreadyExists)
		}
		if err := putConn(tx, &rec); err != nil {
			return err
		}
		return tx.IndexAdd(kParentConns+rec.ParentID, rec.ID)
	})
	if err != nil {
		return fmt.Errorf("store: create connection %s: %w", c.ID, err)
	}
	return nil
}

// GetConnection reads one connection, client secret included.
func (s *Store) GetConnection(ctx context.Context, id string) (*Connection, error) {
	var c *Connection
	err := s.b.View(ctx, func(tx Reader) (err error) {
		c, err = getConn(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: get connection %s: %w", id, err)
	}
	return c, nil
}

// ListConnections lists a parent org's connections, oldest first.
func (s *Store) ListConnections(ctx context.Context, parentID string) ([]Connection, error) {
	var out []Connection
	err := s.b.View(ctx, func(tx Reader) error {
		recs, err := listIndexed[connRecord](tx, kParentConns+parentID, func(id string) string { return kConn + id })
		if err != nil {
			return err
		}
		out = make([]Connection, 0, len(recs))
		for i := range recs {
			out = append(out, *recs[i].conn())
		}
		sortByCreated(out, func(c *Connection) (time.Time, string) { return c.CreatedAt, c.ID })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list connections of %s: %w", parentID, err)
	}
	return out, nil
}

// UpdateConnection reads, changes and writes a connection in one
// transaction. Its ID and parent org cannot change.
func (s *Store) UpdateConnection(ctx context.Context, id string, fn func(*Connection) error) (*Connection, error) {
	var out *Connection
	err := s.b.Update(ctx, func(tx Txn) error {
		old, err := getConn(tx, id)
		if err != nil {
			return err
		}
		cur := *old
		if err := fn(&cur); err != nil {
			return err
		}
		if cur.ID != old.ID || cur.ParentID != old.ParentID {
			return invalidf("the id and parent org of a connection cannot change")
		}
		if cur.Type != ConnSAML && cur.Type != ConnOIDC {
			return invalidf("unknown type %q", cur.Type)
		}
		out = &cur
		return putConn(tx, &cur)
	})
	if err != nil {
		return nil, fmt.Errorf("store: update connection %s: %w", id, err)
	}
	return out, nil
}

// DeleteConnection removes a connection (ErrNotFound if it does not exist).
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	err := s.b.Update(ctx, func(tx Txn) error {
		c, err := getConn(tx, id)
		if err != nil {
			return err
		}
		if err := tx.Delete(kConn + id); err != nil {
			return err
		}
		return tx.IndexRemove(kParentConns+c.ParentID, id)
	})
	if err != nil {
		return fmt.Errorf("store: delete connection %s: %w", id, err)
	}
	return nil
}
