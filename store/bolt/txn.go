package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/ssogate/ssogate/store"
)

// sep joins an index name and a member into one idx key. Neither may contain
// it, otherwise "a"+"\x00b\x00c" and "a\x00b"+"c" would collide.
const sep = "\x00"

// envelopeHeader is the size of the expiry prefix on every kv value.
const envelopeHeader = 8

// txn implements store.Txn (and store.Reader) over one bbolt transaction.
// Using a bbolt read transaction for View makes the write methods fail with
// bbolt's "tx not writable", but View only hands out the Reader half.
type txn struct {
	tx  *bbolt.Tx
	kv  *bbolt.Bucket
	idx *bbolt.Bucket
	exp *bbolt.Bucket
	// now is read once per transaction so every expiry check in it agrees.
	now int64
}

var _ store.Txn = (*txn)(nil)

func newTxn(tx *bbolt.Tx, now time.Time) *txn {
	return &txn{
		tx:  tx,
		kv:  tx.Bucket(bucketKV),
		idx: tx.Bucket(bucketIdx),
		exp: tx.Bucket(bucketExp),
		now: now.UnixNano(),
	}
}

// decode splits an envelope into expiry and value.
func decode(key string, env []byte) (int64, []byte, error) {
	if len(env) < envelopeHeader {
		return 0, nil, fmt.Errorf("bolt: corrupt value for %q: %d bytes", key, len(env))
	}
	return int64(binary.BigEndian.Uint64(env[:envelopeHeader])), env[envelopeHeader:], nil
}

// expired reports whether an expiry stamp is in the past at now. A key
// expires at its deadline, like Redis.
func expired(expiry, now int64) bool { return expiry != 0 && now >= expiry }

// expKey is the exp-bucket key for (expiry, key); big-endian so a cursor
// walks it in expiry order.
func expKey(expiry int64, key string) []byte {
	k := make([]byte, envelopeHeader+len(key))
	binary.BigEndian.PutUint64(k, uint64(expiry))
	copy(k[envelopeHeader:], key)
	return k
}

// Get implements store.Reader. The value is copied because bbolt's memory is
// only valid until the transaction ends.
func (t *txn) Get(key string) ([]byte, error) {
	env := t.kv.Get([]byte(key))
	if env == nil {
		return nil, store.ErrNotFound
	}
	expiry, val, err := decode(key, env)
	if err != nil {
		return nil, err
	}
	if expired(expiry, t.now) {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(val), nil
}

// Put implements store.Txn.
func (t *txn) Put(key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("bolt: put %q: negative ttl %s", key, ttl)
	}
	// Drop the old expiry entry first so GarbageCollect never chases a
	// deadline the key no longer has.
	if err := t.dropExpiry(key); err != nil {
		return err
	}
	var expiry int64
	if ttl > 0 {
		expiry = t.now + int64(ttl)
		if err := t.exp.Put(expKey(expiry, key), nil); err != nil {
			return fmt.Errorf("bolt: put %q expiry: %w", key, err)
		}
	}
	env := make([]byte, envelopeHeader+len(value))
	binary.BigEndian.PutUint64(env, uint64(expiry))
	copy(env[envelopeHeader:], value)
	if err := t.kv.Put([]byte(key), env); err != nil {
		return fmt.Errorf("bolt: put %q: %w", key, err)
	}
	return nil
}

// Delete implements store.Txn.
func (t *txn) Delete(key string) error {
	if err := t.dropExpiry(key); err != nil {
		return err
	}
	if err := t.kv.Delete([]byte(key)); err != nil {
		return fmt.Errorf("bolt: delete %q: %w", key, err)
	}
	return nil
}

// dropExpiry removes the exp entry belonging to key's current value, if any.
func (t *txn) dropExpiry(key string) error {
	env := t.kv.Get([]byte(key))
	if env == nil {
		return nil
	}
	expiry, _, err := decode(key, env)
	if err != nil {
		return err
	}
	if expiry == 0 {
		return nil
	}
	if err := t.exp.Delete(expKey(expiry, key)); err != nil {
		return fmt.Errorf("bolt: delete %q expiry: %w", key, err)
	}
	return nil
}

// idxKey builds the idx-bucket key for (index, member).
func idxKey(index, member string) ([]byte, error) {
	if strings.Contains(index, sep) {
		return nil, fmt.Errorf("bolt: index name %q contains NUL", index)
	}
	if strings.Contains(member, sep) {
		return nil, fmt.Errorf("bolt: member %q of index %q contains NUL", member, index)
	}
	return []byte(index + sep + member), nil
}

// IndexAdd implements store.Txn.
func (t *txn) IndexAdd(index, member string) error {
	k, err := idxKey(index, member)
	if err != nil {
		return err
	}
	if err := t.idx.Put(k, nil); err != nil {
		return fmt.Errorf("bolt: index %q add %q: %w", index, member, err)
	}
	return nil
}

// IndexRemove implements store.Txn.
func (t *txn) IndexRemove(index, member string) error {
	k, err := idxKey(index, member)
	if err != nil {
		return err
	}
	if err := t.idx.Delete(k); err != nil {
		return fmt.Errorf("bolt: index %q remove %q: %w", index, member, err)
	}
	return nil
}

// IndexHas implements store.Reader.
func (t *txn) IndexHas(index, member string) (bool, error) {
	k, err := idxKey(index, member)
	if err != nil {
		return false, err
	}
	// Bucket.Get cannot tell a present key with an empty value from a
	// missing one (both may be nil inside a write transaction), so compare
	// the key the cursor lands on.
	got, _ := t.idx.Cursor().Seek(k)
	return bytes.Equal(got, k), nil
}

// IndexRange implements store.Reader. Members of one index are contiguous
// under the prefix index+"\x00" and bbolt keeps keys in byte order, so a
// cursor Seek to prefix+after lands on the first candidate.
func (t *txn) IndexRange(index, after string, limit int) ([]string, error) {
	start, err := idxKey(index, after)
	if err != nil {
		return nil, err
	}
	prefix := start[:len(index)+len(sep)]
	var out []string
	c := t.idx.Cursor()
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		member := string(k[len(prefix):])
		if after != "" && member == after {
			continue // strictly after
		}
		out = append(out, member)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// gcBatchTx deletes up to gcBatch keys that expired at or before now and
// reports whether more may remain.
func gcBatchTx(btx *bbolt.Tx, now time.Time) (n int, more bool, err error) {
	t := newTxn(btx, now)
	// Collect first: deleting while a bbolt cursor walks the same bucket can skip entries.
	var due [][]byte
	c := t.exp.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) < envelopeHeader {
			return 0, false, errors.New("bolt: corrupt expiry entry")
		}
		if !expired(int64(binary.BigEndian.Uint64(k)), t.now) {
			break
		}
		if len(due) == gcBatch {
			more = true
			break
		}
		due = append(due, bytes.Clone(k))
	}
	for _, k := range due {
		expiry, key := int64(binary.BigEndian.Uint64(k)), k[envelopeHeader:]
		if err := t.exp.Delete(k); err != nil {
			return n, false, fmt.Errorf("bolt: gc expiry entry: %w", err)
		}
		// Only delete the value if it still carries this deadline; Put and
		// Delete keep exp in step, so this is a guard against a stale entry.
		env := t.kv.Get(key)
		if env == nil {
			continue
		}
		cur, _, err := decode(string(key), env)
		if err != nil {
			return n, false, err
		}
		if cur != expiry {
			continue
		}
		if err := t.kv.Delete(key); err != nil {
			return n, false, fmt.Errorf("bolt: gc %q: %w", key, err)
		}
		n++
	}
	return n, more, nil
}
