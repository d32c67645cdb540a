// Package auth authenticates API keys at the edge (the API gateway's part)
// and carries the principal in the request context.
package auth

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// Authenticator resolves an API key.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (property.Principal, error)
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying pr.
func WithPrincipal(ctx context.Context, pr property.Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, pr)
}

// FromContext returns the request's principal.
func FromContext(ctx context.Context) (property.Principal, bool) {
	pr, ok := ctx.Value(ctxKey{}).(property.Principal)
	return pr, ok
}

// Authorize checks that the request's key has scope for propertyID. An
// empty propertyID means "the key's own property" and returns it.
func Authorize(ctx context.Context, propertyID string, scope property.Scope) (string, error) {
	pr, ok := FromContext(ctx)
	if !ok {
		return "", apierror.New(apierror.Unauthenticated, "missing API key: send Authorization: Bearer <key>")
	}
	if pr.Scope != scope {
		return "", apierror.New(apierror.PermissionDenied, "%s cannot be used here: this call needs %s", KeyOf(string(pr.Scope)), KeyOf(string(scope)))
	}
	if propertyID != "" && propertyID != pr.PropertyID {
		return "", apierror.New(apierror.PermissionDenied, "the key does not belong to property %q", propertyID)
	}
	return pr.PropertyID, nil
}

// BearerKey extracts the key of an "Authorization: Bearer <key>" value.
func BearerKey(header string) string {
	const prefix = "bearer "
	if len(header) > len(prefix) && strings.EqualFold(header[:len(prefix)], prefix) {
		return strings.TrimSpace(header[len(prefix):])
	}
	return ""
}

// Interceptor authenticates every call whose procedure is in scopes: a
// missing or unknown key is Unauthenticated, a key of none of the
// procedure's scopes PermissionDenied. Procedures not listed (health,
// reflection) pass.
type Interceptor struct {
	auth   Authenticator
	scopes map[string][]property.Scope
	assert *Assertions
	count  func(by string)
}

// NewInterceptor returns the interceptor.
func NewInterceptor(a Authenticator, scopes map[string][]property.Scope) *Interceptor {
	return &Interceptor{auth: a, scopes: scopes}
}

// TrustAssertions makes the interceptor take the principal of a request's
// HeaderPrincipal when a verifies it (see Assertions), without looking the
// key up.
func (i *Interceptor) TrustAssertions(a *Assertions) *Interceptor {
	i.assert = a
	return i
}

// Counted makes the interceptor call count with "assertion" or "key" for
// every call it authenticates, by how it learned the principal.
func (i *Interceptor) Counted(count func(by string)) *Interceptor {
	i.count = count
	return i
}

func (i *Interceptor) counted(by string) {
	if i.count != nil {
		i.count(by)
	}
}

// Authenticate checks a request's Authorization header (or its principal
// assertion) for a procedure and returns ctx carrying the key's principal
// (ctx itself for a procedure that needs no key). The interceptor runs it
// for every call; REST routes served without the RPC handlers call it
// themselves.
func (i *Interceptor) Authenticate(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	scopes, ok := i.scopes[procedure]
	if !ok {
		return ctx, nil
	}
	if i.assert != nil {
		if v := h.Get(HeaderPrincipal); v != "" {
			if pr, ok := i.assert.Verify(v, time.Now()); ok && slices.Contains(scopes, pr.Scope) {
				i.counted("assertion")
				return WithPrincipal(ctx, pr), nil
			}
		}
	}
	i.counted("key")
	key := BearerKey(h.Get("Authorization"))
	if key == "" {
		return ctx, apierror.New(apierror.Unauthenticated, "missing API key: send Authorization: Bearer <key>")
	}
	pr, err := i.auth.Authenticate(ctx, key)
	if err != nil {
		return ctx, err
	}
	if !slices.Contains(scopes, pr.Scope) {
		return ctx, apierror.New(apierror.PermissionDenied, "%s cannot be used here: this call needs %s", KeyOf(string(pr.Scope)), KeyOf(scopesText(scopes)))
	}
	return WithPrincipal(ctx, pr), nil
}

// KeyOf is "a read key", "an admin key": the scope with its article.
func KeyOf(scope string) string {
	if scope != "" && strings.ContainsRune("aeiou", rune(scope[0])) {
		return "an " + scope + " key"
	}
	return "a " + scope + " key"
}

func scopesText(s []property.Scope) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, " or ")
}

// RequireAdmin checks that the request carries an admin key.
func RequireAdmin(ctx context.Context) error {
	pr, ok := FromContext(ctx)
	if !ok {
		return apierror.New(apierror.Unauthenticated, "missing API key: send Authorization: Bearer <admin key>")
	}
	if pr.Scope != property.Admin {
		return apierror.New(apierror.PermissionDenied, "%s cannot be used here: this call needs an admin key", KeyOf(string(pr.Scope)))
	}
	return nil
}

func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := i.Authenticate(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.Authenticate(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
