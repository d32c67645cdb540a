// Package seal encrypts event records under keys that belong to the people
// they describe, so that destroying a key deletes, from a log nobody can
// rewrite, every record sealed with it (crypto-shredding).
//
// Each record is sealed (AES-256-GCM) under a key derived from three keys
// the key store holds: its client's (the web client id or app instance id),
// its user's when it carries a user id, and its property's key of the month
// it was received in. Destroying the client's or the user's key deletes a
// person's records (GA4's user deletion); destroying a month's key deletes
// the property's records of that month (data retention). The log keeps the
// sealed bytes, the ids of the keys and the property id: nothing of the
// event, its client or its user is readable without the keys.
//
// The key store sees subjects only as SHA-256 digests, and a record names
// its keys by random ids, so that once a subject's key is destroyed its
// records cannot be linked back to it.
//
// A sealed record holds the events of one collect batch (one visitor's),
// compressed before they are encrypted: ciphertext does not compress, so
// sealing events one by one would have the log store them whole (about 19
// times the bytes of loadgen's traffic compressed in Kafka's batches; a
// visitor's batch compressed alone is within about 2 times of them).
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// Header is the record header of a sealed record: "v1", the property id and
// the ids of its keys (client, month, then user when there is one),
// separated by spaces. It is the ciphertext's additional data, so that a
// record cannot be moved to other keys or another property.
const Header = "sextant-sealed"

// ContentType is the content type of a sealed record.
const ContentType = "application/x-sextant-sealed; framing=uvarint-length; compression=zstd; messageType=sextant.event.v1.Event"

const headerVersion = "v1"

// IDSize and SecretSize are the sizes of a key's id and secret.
const (
	IDSize     = 16
	SecretSize = 32
)

// ID names a key.
type ID [IDSize]byte

// String is the id in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Key is a subject's key.
type Key struct {
	ID     ID
	Secret [SecretSize]byte
}

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	_, _ = rand.Read(k.ID[:]) // crypto/rand.Read never fails (Go 1.24)
	_, _ = rand.Read(k.Secret[:])
	return k
}

// Subject is the digest of what a key belongs to: a client, a user or a
// month of a property. Key stores keep digests, never the ids.
type Subject [sha256.Size]byte

func subjectOf(kind, id string) Subject {
	h := sha256.New()
	h.Write([]byte("sextant-subject\x00"))
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return Subject(h.Sum(nil))
}

// Client is the subject of a web client id or app instance id.
func Client(id string) Subject { return subjectOf("client", id) }

// User is the subject of a user id.
func User(id string) Subject { return subjectOf("user", id) }

// Month is the subject of a property's records received in t's month (UTC).
func Month(t time.Time) Subject { return subjectOf("month", MonthOf(t)) }

// MonthOf names t's month (UTC), as "2006-01".
func MonthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// ErrShredded says a record's key was destroyed (or never existed): the
// record is deleted.
var ErrShredded = errors.New("seal: the record's key was destroyed")

// ErrCorrupt says a sealed record does not open with its keys.
var ErrCorrupt = errors.New("seal: sealed record is corrupt")

// Keys is the key store. Implementations: pebblestore (embedded) and
// cqlstore (Cassandra, ScyllaDB); sealtest is their conformance suite.
// A subject has one key at a time: concurrent creators, in any process,
// agree on it (a client's records then keep one partition, see
// SealRecords).
type Keys interface {
	// FindSubjectKey returns the subject's key, and false when it has none.
	FindSubjectKey(ctx context.Context, property string, s Subject) (Key, bool, error)
	// AddSubjectKey stores k as the subject's key unless it has one, and
	// returns the subject's key (k, or the one it had). The key is
	// readable by id (Key) before it is found under the subject.
	AddSubjectKey(ctx context.Context, property string, s Subject, k Key) (Key, error)
	// Key returns the key with id, or an error wrapping ErrShredded when it
	// does not exist (destroyed, or never made).
	Key(ctx context.Context, property string, id ID) (Key, error)
	// Forget destroys the subject's key, reporting whether it had one. A
	// later AddSubjectKey starts again.
	Forget(ctx context.Context, property string, s Subject) (bool, error)
}

// SubjectKey returns the subject's key, adding a new one when it has none.
func SubjectKey(ctx context.Context, keys Keys, property string, s Subject) (Key, error) {
	k, ok, err := keys.FindSubjectKey(ctx, property, s)
	if err != nil || ok {
		return k, err
	}
	return keys.AddSubjectKey(ctx, property, s, NewKey())
}

// recordSecret derives a record's key from its keys' secrets: without
// every one of them it cannot be derived.
func recordSecret(keys ...*Key) []byte {
	m := hmac.New(sha256.New, keys[0].Secret[:])
	m.Write([]byte("sextant-seal/v1"))
	for _, k := range keys[1:] {
		m.Write(k.Secret[:])
	}
	return m.Sum(nil)
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Subjects are what a batch's records belong to.
type Subjects struct {
	Property string
	ClientID string // the web client id or app instance id
	UserID   string // "" when the batch has none
	Received time.Time
}

// MaxRecordEvents and maxRecordBytes bound the events and compressed bytes
// of one sealed record (a batch over either is sealed into several).
const (
	MaxRecordEvents = 1 << PositionBits
	maxRecordBytes  = 512 << 10
)

// PositionBits is how many low bits of an event's position (offset <<
// PositionBits | index) its index in its record takes.
const PositionBits = 12

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

// SealRecords seals msgs (the events of one batch, all of subjects s) into
// records: each holds up to MaxRecordEvents of the events, framed (a
// varint length before each) and compressed, then encrypted (nonce ‖
// ciphertext); its key is the property and the client key's id (so that a
// client's records keep one partition), and its headers say how to open it.
func SealRecords(msgs []eventlog.Message, s Subjects, client, month Key, user *Key) ([]eventlog.Message, error) {
	keys := []*Key{&client, &month}
	hdr := make([]byte, 0, 3+len(s.Property)+3*(2*IDSize+1))
	hdr = append(append(append(hdr, headerVersion...), ' '), s.Property...)
	hdr = append(append(hdr, ' '), client.ID.String()...)
	hdr = append(append(hdr, ' '), month.ID.String()...)
	if user != nil {
		keys = append(keys, user)
		hdr = append(append(hdr, ' '), user.ID.String()...)
	}
	aead, err := newAEAD(recordSecret(keys...))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	key := make([]byte, 0, len(s.Property)+1+2*IDSize)
	key = append(append(append(key, s.Property...), '/'), client.ID.String()...)
	headers := map[string]string{
		eventlog.HeaderSchemaVersion: eventlog.SchemaVersion1,
		eventlog.HeaderContentType:   ContentType,
		Header:                       string(hdr),
	}
	var out []eventlog.Message
	var frame []byte
	for start := 0; start < len(msgs); {
		frame = frame[:0]
		end := start
		for end < len(msgs) && end-start < MaxRecordEvents && (end == start || len(frame)+len(msgs[end].Value) <= 4*maxRecordBytes) {
			frame = binary.AppendUvarint(frame, uint64(len(msgs[end].Value)))
			frame = append(frame, msgs[end].Value...)
			end++
		}
		z := zenc.EncodeAll(frame, nil)
		if len(z) > maxRecordBytes && end-start > 1 {
			// Compressed too large: seal the first half on its own.
			half := start + (end-start)/2
			rest, err := SealRecords(msgs[start:half], s, client, month, user)
			if err != nil {
				return nil, err
			}
			out = append(out, rest...)
			start = half
			continue
		}
		v := make([]byte, aead.NonceSize(), aead.NonceSize()+len(z)+aead.Overhead())
		_, _ = rand.Read(v)
		v = aead.Seal(v, v, z, hdr)
		out = append(out, eventlog.Message{Key: key, Value: v, Headers: headers})
		start = end
	}
	return out, nil
}

// Events calls fn with each event of an opened record's payload, in order.
func Events(payload []byte, fn func(i int, event []byte) error) error {
	for i := 0; len(payload) > 0; i++ {
		n, w := binary.Uvarint(payload)
		if w <= 0 || n > uint64(len(payload)-w) {
			return fmt.Errorf("%w: event %d is cut", ErrCorrupt, i)
		}
		if err := fn(i, payload[w:w+int(n)]); err != nil {
			return err
		}
		payload = payload[w+int(n):]
	}
	return nil
}

// Sealed reports whether rec is sealed.
func Sealed(rec *eventlog.Record) bool { return rec.Headers[Header] != "" }

// Refs parses a sealed record's header into its property and key ids.
func Refs(header string) (property string, ids []ID, err error) {
	f := strings.Fields(header)
	if len(f) < 4 || len(f) > 5 || f[0] != headerVersion {
		return "", nil, fmt.Errorf("%w: header %q", ErrCorrupt, header)
	}
	ids = make([]ID, 0, 3)
	for _, h := range f[2:] {
		var id ID
		if hex.DecodedLen(len(h)) != IDSize {
			return "", nil, fmt.Errorf("%w: key id %q", ErrCorrupt, h)
		}
		if _, err := hex.Decode(id[:], []byte(h)); err != nil {
			return "", nil, fmt.Errorf("%w: key id %q", ErrCorrupt, h)
		}
		ids = append(ids, id)
	}
	return f[1], ids, nil
}

// openWith decrypts and decompresses a sealed record's value, appending
// its payload (framed events, see Events) to dst.
func openWith(dst []byte, aead cipher.AEAD, value []byte, hdr string) ([]byte, error) {
	ns := aead.NonceSize()
	if len(value) < ns+aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(value))
	}
	z, err := aead.Open(nil, value[:ns], value[ns:], []byte(hdr))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	out, err := zdec.DecodeAll(z, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	return out, nil
}
