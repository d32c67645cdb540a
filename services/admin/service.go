// Package admin is the AdminService: properties and their API keys,
// managed while Sextant runs. Every process that has the registry's store
// serves it (the gateway included); every call needs an admin key, checked
// by the auth interceptor and again here.
package admin

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/sextant-analytics/sextant/gen/sextant/admin/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/admin/v1/adminv1connect"
	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/auth"
	"github.com/sextant-analytics/sextant/pkg/privacy"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// Service implements adminv1connect.AdminServiceHandler over a registry.
type Service struct {
	reg  *property.Registry
	dels Deleter
	now  func() time.Time
}

// Deleter deletes users (privacy.Ledger).
type Deleter interface {
	Delete(ctx context.Context, property string, kind privacy.Kind, id string) (privacy.Request, error)
}

var _ adminv1connect.AdminServiceHandler = (*Service)(nil)

// New returns the service.
// dels deletes users; nil answers DeleteUser UNIMPLEMENTED.
func New(reg *property.Registry, dels Deleter) *Service {
	return &Service{reg: reg, dels: dels, now: time.Now}
}

func toProto(p property.Property) *adminv1.Property {
	out := &adminv1.Property{
		PropertyId: p.ID, DisplayName: p.Name, TimeZone: p.TimeZone, MeasurementId: p.MeasurementID(), FirebaseAppId: p.FirebaseAppID(),
		AllowedOrigins: slices.Clone(p.AllowedOrigins), CreateTime: timestamppb.New(p.CreatedAt),
		CurrencyCode: p.CurrencyCode, CurrencyRates: maps.Clone(p.CurrencyRates), KeyEvents: slices.Clone(p.KeyEvents),
		CustomEventDimensions: slices.Clone(p.CustomEventDimensions), CustomUserDimensions: slices.Clone(p.CustomUserDimensions),
		CustomEventMetrics: slices.Clone(p.CustomEventMetrics), DataRetentionMonths: int32(p.DataRetentionMonths),
	}
	if !p.UpdatedAt.IsZero() {
		out.UpdateTime = timestamppb.New(p.UpdatedAt)
	}
	return out
}

func scopeToProto(s property.Scope) adminv1.KeyScope {
	switch s {
	case property.Write:
		return adminv1.KeyScope_KEY_SCOPE_WRITE
	case property.Read:
		return adminv1.KeyScope_KEY_SCOPE_READ
	case property.Measurement:
		return adminv1.KeyScope_KEY_SCOPE_MEASUREMENT
	}
	return adminv1.KeyScope_KEY_SCOPE_UNSPECIFIED
}

func (s *Service) keyToProto(k property.Key, secret string) *adminv1.Key {
	now := s.now()
	out := &adminv1.Key{
		KeyId: k.ID, PropertyId: k.PropertyID, Scope: scopeToProto(k.Scope), Hint: k.Hint,
		CreateTime: timestamppb.New(k.CreatedAt), Secret: secret,
	}
	switch {
	case !k.Usable(now):
		out.State = adminv1.KeyState_KEY_STATE_REVOKED
	case !k.ExpiresAt.IsZero():
		out.State = adminv1.KeyState_KEY_STATE_EXPIRING
	default:
		out.State = adminv1.KeyState_KEY_STATE_ACTIVE
	}
	if !k.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(k.ExpiresAt)
	}
	return out
}

func (s *Service) CreateProperty(ctx context.Context, req *connect.Request[adminv1.CreatePropertyRequest]) (*connect.Response[adminv1.CreatePropertyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	in := req.Msg.GetProperty()
	if in == nil {
		return nil, apierror.Invalid("invalid property", apierror.Violation{Field: "property", Description: "required", Code: apierror.ValueRequired})
	}
	p, keys, err := s.reg.Create(ctx, property.Property{Name: in.DisplayName, TimeZone: in.TimeZone, AllowedOrigins: in.AllowedOrigins,
		CurrencyCode: in.CurrencyCode, CurrencyRates: in.CurrencyRates, KeyEvents: in.KeyEvents,
		CustomEventDimensions: in.CustomEventDimensions, CustomUserDimensions: in.CustomUserDimensions, CustomEventMetrics: in.CustomEventMetrics,
		DataRetentionMonths: int(in.DataRetentionMonths)})
	if err != nil {
		return nil, prefixed(err)
	}
	return connect.NewResponse(&adminv1.CreatePropertyResponse{
		Property: toProto(p),
		WriteKey: s.keyToProto(keys.Write, keys.WriteKey),
		ReadKey:  s.keyToProto(keys.Read, keys.ReadKey),
	}), nil
}

// prefixed names the fields of a property's violations as the request
// does ("property.timeZone").
func prefixed(err error) error {
	var e *apierror.Error
	if !errors.As(err, &e) || len(e.Violations) == 0 {
		return err
	}
	c := *e
	c.Violations = slices.Clone(e.Violations)
	for i := range c.Violations {
		c.Violations[i].Field = "property." + c.Violations[i].Field
	}
	return &c
}

func (s *Service) ListProperties(ctx context.Context, req *connect.Request[adminv1.ListPropertiesRequest]) (*connect.Response[adminv1.ListPropertiesResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if n := req.Msg.PageSize; n < 0 || n > 1000 {
		return nil, apierror.Invalid("invalid page size", apierror.Violation{Field: "pageSize", Description: "between 0 and 1000", Code: apierror.ValueOutOfBounds})
	}
	list, next, err := s.reg.List(ctx, int(req.Msg.PageSize), req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	out := &adminv1.ListPropertiesResponse{NextPageToken: next}
	for _, p := range list {
		out.Properties = append(out.Properties, toProto(p))
	}
	return connect.NewResponse(out), nil
}

func (s *Service) GetProperty(ctx context.Context, req *connect.Request[adminv1.GetPropertyRequest]) (*connect.Response[adminv1.GetPropertyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	p, err := s.reg.Get(ctx, req.Msg.PropertyId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.GetPropertyResponse{Property: toProto(p)}), nil
}

func (s *Service) UpdateProperty(ctx context.Context, req *connect.Request[adminv1.UpdatePropertyRequest]) (*connect.Response[adminv1.UpdatePropertyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	in := req.Msg.GetProperty()
	if in == nil || in.PropertyId == "" {
		return nil, apierror.Invalid("invalid update", apierror.Violation{Field: "property.propertyId", Description: "required", Code: apierror.ValueRequired})
	}
	paths := req.Msg.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = []string{"display_name", "time_zone", "allowed_origins"}
	}
	var patch property.Patch
	for i, p := range paths {
		switch p {
		case "display_name", "displayName":
			patch.Name = &in.DisplayName
		case "time_zone", "timeZone":
			patch.TimeZone = &in.TimeZone
		case "allowed_origins", "allowedOrigins":
			patch.AllowedOrigins = &in.AllowedOrigins
		case "currency_code", "currencyCode":
			patch.CurrencyCode = &in.CurrencyCode
		case "currency_rates", "currencyRates":
			patch.CurrencyRates = &in.CurrencyRates
		case "key_events", "keyEvents":
			patch.KeyEvents = &in.KeyEvents
		case "custom_event_dimensions", "customEventDimensions":
			patch.CustomEventDimensions = &in.CustomEventDimensions
		case "custom_user_dimensions", "customUserDimensions":
			patch.CustomUserDimensions = &in.CustomUserDimensions
		case "custom_event_metrics", "customEventMetrics":
			patch.CustomEventMetrics = &in.CustomEventMetrics
		case "data_retention_months", "dataRetentionMonths":
			m := int(in.DataRetentionMonths)
			patch.DataRetentionMonths = &m
		default:
			return nil, apierror.Invalid("invalid update mask", apierror.Violation{
				Field: "updateMask.paths[" + strconv.Itoa(i) + "]", Description: "one of display_name, time_zone, allowed_origins, currency_code, currency_rates, key_events, custom_event_dimensions, custom_user_dimensions, custom_event_metrics, data_retention_months", Code: apierror.ValueInvalid,
			})
		}
	}
	p, err := s.reg.Update(ctx, in.PropertyId, patch)
	if err != nil {
		return nil, prefixed(err)
	}
	return connect.NewResponse(&adminv1.UpdatePropertyResponse{Property: toProto(p)}), nil
}

func (s *Service) DeleteProperty(ctx context.Context, req *connect.Request[adminv1.DeletePropertyRequest]) (*connect.Response[adminv1.DeletePropertyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := s.reg.Delete(ctx, req.Msg.PropertyId); err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.DeletePropertyResponse{}), nil
}

func scopeFromProto(s adminv1.KeyScope) property.Scope {
	switch s {
	case adminv1.KeyScope_KEY_SCOPE_WRITE:
		return property.Write
	case adminv1.KeyScope_KEY_SCOPE_READ:
		return property.Read
	case adminv1.KeyScope_KEY_SCOPE_MEASUREMENT:
		return property.Measurement
	}
	return ""
}

func (s *Service) CreateKey(ctx context.Context, req *connect.Request[adminv1.CreateKeyRequest]) (*connect.Response[adminv1.CreateKeyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	k, secret, err := s.reg.CreateKey(ctx, req.Msg.PropertyId, scopeFromProto(req.Msg.Scope))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.CreateKeyResponse{Key: s.keyToProto(k, secret)}), nil
}

func (s *Service) ListKeys(ctx context.Context, req *connect.Request[adminv1.ListKeysRequest]) (*connect.Response[adminv1.ListKeysResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	keys, err := s.reg.ListKeys(ctx, req.Msg.PropertyId, req.Msg.ShowRevoked)
	if err != nil {
		return nil, err
	}
	out := &adminv1.ListKeysResponse{}
	for _, k := range keys {
		out.Keys = append(out.Keys, s.keyToProto(k, ""))
	}
	return connect.NewResponse(out), nil
}

func (s *Service) RotateKey(ctx context.Context, req *connect.Request[adminv1.RotateKeyRequest]) (*connect.Response[adminv1.RotateKeyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var grace time.Duration
	if g := req.Msg.GracePeriod; g != nil {
		if err := g.CheckValid(); err != nil {
			return nil, apierror.Invalid("invalid rotation", apierror.Violation{Field: "gracePeriod", Description: err.Error(), Code: apierror.ValueInvalid})
		}
		grace = g.AsDuration()
	}
	nk, secret, old, err := s.reg.RotateKey(ctx, req.Msg.PropertyId, req.Msg.KeyId, grace)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.RotateKeyResponse{Key: s.keyToProto(nk, secret), OldKey: s.keyToProto(old, "")}), nil
}

func (s *Service) RevokeKey(ctx context.Context, req *connect.Request[adminv1.RevokeKeyRequest]) (*connect.Response[adminv1.RevokeKeyResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	k, err := s.reg.RevokeKey(ctx, req.Msg.PropertyId, req.Msg.KeyId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.RevokeKeyResponse{Key: s.keyToProto(k, "")}), nil
}

// DeleteUser destroys a user's keys (see the RPC's documentation).
func (s *Service) DeleteUser(ctx context.Context, req *connect.Request[adminv1.DeleteUserRequest]) (*connect.Response[adminv1.DeleteUserResponse], error) {
	if err := auth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if s.dels == nil {
		return nil, apierror.New(apierror.FailedPrecondition, "this process cannot delete users: it has no key store")
	}
	m := req.Msg
	var kind privacy.Kind
	var id, field string
	switch u := m.User.(type) {
	case *adminv1.DeleteUserRequest_ClientId:
		kind, id, field = privacy.ClientID, u.ClientId, "client_id"
	case *adminv1.DeleteUserRequest_UserId:
		kind, id, field = privacy.UserID, u.UserId, "user_id"
	case *adminv1.DeleteUserRequest_AppInstanceId:
		kind, id, field = privacy.AppInstanceID, u.AppInstanceId, "app_instance_id"
	default:
		return nil, apierror.Invalid("no user to delete", apierror.Violation{Field: "client_id",
			Description: "set one of client_id, user_id or app_instance_id", Code: apierror.ValueRequired})
	}
	if id == "" {
		return nil, apierror.Invalid("no user to delete", apierror.Violation{Field: field, Description: "must not be empty", Code: apierror.ValueRequired})
	}
	// The property must exist (and a deleted one has nothing to delete).
	if _, err := s.reg.Get(ctx, m.PropertyId); err != nil {
		return nil, err
	}
	r, err := s.dels.Delete(ctx, m.PropertyId, kind, id)
	if err != nil {
		return nil, &apierror.Error{Kind: apierror.Unavailable, Err: err, RetryAfter: time.Second,
			Message: "the user's keys could not be destroyed now; retry (a deletion asked twice is done once)"}
	}
	return connect.NewResponse(&adminv1.DeleteUserResponse{DeletionRequestTime: timestamppb.New(r.Time), EventsFound: r.KeyFound}), nil
}
