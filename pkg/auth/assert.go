package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sextant-analytics/sextant/pkg/property"
)

// Principal assertions spare the services behind the gateway a second key
// lookup.
//
// The gateway authenticates every call's key; the service it forwards the
// call to used to authenticate the same key again, and with many
// properties (few of them in any cache) that was a second read of the
// registry per call. Instead, the gateway tells the service whose key it
// was, in a header signed with a secret the processes share through the
// registry: HeaderPrincipal, "<mac>.<expiry>.<scope>.<property id>". A
// service that verifies the signature takes the principal without a
// lookup; one that cannot (no header, a secret it does not hold yet, an
// expired or forged assertion) authenticates the Authorization header as
// before, so an assertion can only spare work, never grant access that the
// key does not have. Clients cannot mint one: the gateway never forwards a
// client's own header, and a forged one fails the signature.

// HeaderPrincipal carries a signed principal from the gateway.
const HeaderPrincipal = "Sextant-Principal"

// assertionTTL bounds how long an assertion is accepted: it is made for
// one forwarded call, so it only has to outlive the hop (and clock skew).
const assertionTTL = 30 * time.Second

// assertionMAC is the length of the signature kept (128 bits of
// HMAC-SHA256).
const assertionMAC = 16

// Assertions signs and verifies principal assertions. It signs with the
// first of its secrets and accepts any of them; when an assertion does not
// verify, it asks Refresh (at most once a second) for the secrets again,
// so that a secret another process created is learnt at its first use.
type Assertions struct {
	keys atomic.Pointer[[][]byte]
	// Refresh, when set, reads the current secrets.
	Refresh   func() ([][]byte, error)
	refreshed atomic.Int64 // Unix nanoseconds of the last Refresh
}

// NewAssertions returns Assertions holding secrets (the first signs).
func NewAssertions(secrets ...[]byte) *Assertions {
	a := &Assertions{}
	a.Set(secrets)
	return a
}

// Set replaces the secrets (ignoring empty ones); the first signs.
func (a *Assertions) Set(secrets [][]byte) {
	var keep [][]byte
	for _, s := range secrets {
		if len(s) > 0 {
			keep = append(keep, append([]byte(nil), s...))
		}
	}
	if len(keep) > 0 {
		a.keys.Store(&keep)
	}
}

// Follow loads the secrets with read, then again every interval until ctx
// ends (there is more than one only when processes created them at once;
// Verify also asks Refresh when an assertion does not verify). Until they
// are loaded, calls are authenticated by their keys alone.
func (a *Assertions) Follow(ctx context.Context, read func(context.Context) ([][]byte, error), interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if secrets, err := read(ctx); err != nil {
			if ctx.Err() == nil {
				logger.Warn("principal assertions: cannot read their secret; keys are looked up by every process", "err", err)
			}
		} else {
			a.Set(secrets)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func mac(secret []byte, exp int64, scope property.Scope, pid string) []byte {
	h := hmac.New(sha256.New, secret)
	var b [20]byte
	h.Write(strconv.AppendInt(b[:0], exp, 10))
	h.Write([]byte{0})
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(pid))
	return h.Sum(nil)[:assertionMAC]
}

// Sign returns the assertion of pr, valid until now plus a short TTL, or
// "" when there is none to make (no secret yet, or an admin principal:
// admin calls are rare and always look their key up).
func (a *Assertions) Sign(pr property.Principal, now time.Time) string {
	keys := a.keys.Load()
	if keys == nil || len(*keys) == 0 || (pr.Scope != property.Write && pr.Scope != property.Read) || pr.PropertyID == "" {
		return ""
	}
	exp := now.Add(assertionTTL).Unix()
	var b strings.Builder
	b.WriteString(base64.RawURLEncoding.EncodeToString(mac((*keys)[0], exp, pr.Scope, pr.PropertyID)))
	b.WriteByte('.')
	b.WriteString(strconv.FormatInt(exp, 10))
	b.WriteByte('.')
	b.WriteString(string(pr.Scope))
	b.WriteByte('.')
	b.WriteString(pr.PropertyID)
	return b.String()
}

// Verify returns the principal of an assertion whose signature is good
// under one of the secrets and which has not expired.
func (a *Assertions) Verify(v string, now time.Time) (property.Principal, bool) {
	if v == "" {
		return property.Principal{}, false
	}
	parts := strings.SplitN(v, ".", 4)
	if len(parts) != 4 || parts[3] == "" {
		return property.Principal{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(got) != assertionMAC {
		return property.Principal{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Unix() > exp || exp-now.Unix() > int64(2*assertionTTL/time.Second) {
		return property.Principal{}, false
	}
	scope := property.Scope(parts[2])
	if scope != property.Write && scope != property.Read {
		return property.Principal{}, false
	}
	pr := property.Principal{PropertyID: parts[3], Scope: scope}
	if a.verifies(got, exp, pr) {
		return pr, true
	}
	// A secret another process created: read them again, once a second
	// at most (a forged assertion must not make every call read).
	if last := a.refreshed.Load(); a.Refresh != nil && now.UnixNano()-last > int64(time.Second) && a.refreshed.CompareAndSwap(last, now.UnixNano()) {
		if secrets, err := a.Refresh(); err == nil {
			a.Set(secrets)
			if a.verifies(got, exp, pr) {
				return pr, true
			}
		}
	}
	return property.Principal{}, false
}

func (a *Assertions) verifies(got []byte, exp int64, pr property.Principal) bool {
	keys := a.keys.Load()
	if keys == nil {
		return false
	}
	for _, k := range *keys {
		if hmac.Equal(got, mac(k, exp, pr.Scope, pr.PropertyID)) {
			return true
		}
	}
	return false
}
