// Package property is the registry of properties (sites and apps) and their
// API keys. Keys are random (192 bits), shown once, and stored only as
// SHA-256 hashes.
//
// The registry is built for millions of properties: every record is found
// by its key (no process loads the registry), records are spread over
// shards (so no store partition holds them all), each process keeps the
// keys and properties it uses in a bounded cache, and a change feed (see
// Watch) tells every process within a second which cached records changed,
// so that a revoked key is refused everywhere.
package property

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sextant-analytics/sextant/pkg/apierror"
	"github.com/sextant-analytics/sextant/pkg/configcheck"
	"github.com/sextant-analytics/sextant/pkg/metadata"
)

// Property is a site or app whose hits Sextant collects.
type Property struct {
	ID        string    `json:"propertyId"`
	Name      string    `json:"name"`
	TimeZone  string    `json:"timeZone"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// AllowedOrigins lists browser origins allowed to send hits (CORS);
	// empty allows any.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// CurrencyCode is the ISO 4217 code reports show revenue in ("" is
	// USD); CurrencyRates convert other currencies into it (one unit of
	// the key's currency is worth the value). With no rates, amounts count
	// as sent.
	CurrencyCode  string             `json:"currencyCode,omitempty"`
	CurrencyRates map[string]float64 `json:"currencyRates,omitempty"`
	// KeyEvents are the event names counted as key events from the time
	// they are set on.
	KeyEvents []string `json:"keyEvents,omitempty"`
	// Custom definitions: event parameters and user properties kept as
	// custom dimensions, numeric event parameters kept as custom metrics.
	CustomEventDimensions []string `json:"customEventDimensions,omitempty"`
	CustomUserDimensions  []string `json:"customUserDimensions,omitempty"`
	CustomEventMetrics    []string `json:"customEventMetrics,omitempty"`
	// DataRetentionMonths is how long events are kept (GA4's data
	// retention): the events received in a month are deleted once that
	// many whole months followed it. 0 keeps them.
	DataRetentionMonths int `json:"dataRetentionMonths,omitempty"`
}

// MeasurementID is the property's GA4-style measurement id ("G-" and ten
// letters and digits), which Measurement Protocol and gtag.js hits name.
// It encodes the property id (with a check), so that a hit's measurement
// id finds its property without a lookup: every property has one, for
// good, without it being stored.
func (p Property) MeasurementID() string { return MeasurementIDOf(p.ID) }

// midAlphabet spells measurement ids: 32 letters and digits (no 0, 1, O, I).
const midAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// MeasurementIDOf is the measurement id of property id: 40 bits of the
// id and 10 bits of check, in ten characters of midAlphabet; "" for an id
// that is not a number below 2^40 (every id Create makes is).
func MeasurementIDOf(id string) string {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n >= 1<<40 || strconv.FormatUint(n, 10) != id {
		return ""
	}
	v := n<<10 | midCheck(n)
	var b [12]byte
	b[0], b[1] = 'G', '-'
	for i := 11; i >= 2; i-- {
		b[i] = midAlphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

// FirebaseAppID is the property's app id for Measurement Protocol hits of
// apps (firebase_app_id), in the shape of Firebase's: "1:{property
// id}:app:" and sixteen hex digits of check.
func (p Property) FirebaseAppID() string { return FirebaseAppIDOf(p.ID) }

// FirebaseAppIDOf is the app id of property id.
func FirebaseAppIDOf(id string) string {
	sum := sha256.Sum256([]byte("sextant firebase app id/" + id))
	return "1:" + id + ":app:" + hex.EncodeToString(sum[:8])
}

// PropertyOfFirebaseAppID is the property an app id names.
func PropertyOfFirebaseAppID(appID string) (string, bool) {
	parts := strings.Split(appID, ":")
	if len(parts) != 4 || parts[0] != "1" || parts[2] != "app" || parts[1] == "" || FirebaseAppIDOf(parts[1]) != appID {
		return "", false
	}
	return parts[1], true
}

// PropertyOfMeasurementID is the property id a measurement id encodes.
func PropertyOfMeasurementID(mid string) (string, bool) {
	if len(mid) != 12 || !strings.HasPrefix(mid, "G-") {
		return "", false
	}
	var v uint64
	for _, c := range []byte(mid[2:]) {
		i := strings.IndexByte(midAlphabet, c)
		if i < 0 {
			return "", false
		}
		v = v<<5 | uint64(i)
	}
	n := v >> 10
	if v&1023 != midCheck(n) {
		return "", false
	}
	return strconv.FormatUint(n, 10), true
}

func midCheck(n uint64) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	sum := sha256.Sum256(append([]byte("sextant measurement id/"), b[:]...))
	return uint64(binary.BigEndian.Uint16(sum[:2])) & 1023
}

// Location returns the property's time zone (UTC when unset or unknown).
func (p Property) Location() *time.Location {
	if loc, err := time.LoadLocation(p.TimeZone); err == nil && p.TimeZone != "" {
		return loc
	}
	return time.UTC
}

// Keys are a new property's credentials, shown once: the secrets (what
// `sextant property create --json` prints) and the stored keys.
type Keys struct {
	PropertyID string `json:"propertyId"`
	WriteKey   string `json:"writeKey"`
	ReadKey    string `json:"readKey"`
	Write      Key    `json:"-"`
	Read       Key    `json:"-"`
}

// Options tune a registry's cache.
type Options struct {
	// CacheEntries bounds the keys and the properties cached (each);
	// 100,000 when 0.
	CacheEntries int
	// CacheTTL is how long a cached record is trusted without the change
	// feed saying otherwise (a safety net: Watch invalidates changed
	// records within a second); 10 minutes when 0.
	CacheTTL time.Duration
	Logger   *slog.Logger
}

// withDefaults fills the zero fields (and negative ones, which Validate
// reports) with their defaults.
func (o Options) withDefaults() Options {
	if o.CacheEntries <= 0 {
		o.CacheEntries = 100_000
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports negative fields (zero means the default).
func (o Options) Validate() error {
	e := configcheck.New("property")
	configcheck.NotNegative(e, "CacheEntries", o.CacheEntries)
	configcheck.NotNegative(e, "CacheTTL", o.CacheTTL)
	return e.Err()
}

// Registry stores properties and keys in the metadata store.
type Registry struct {
	kv    metadata.KV
	log   *slog.Logger
	keys  *cache[Key]      // key hash -> key
	props *cache[Property] // property id -> property
	feed  *feed
}

// NewRegistry returns a registry over kv.
func NewRegistry(kv metadata.KV, o Options) *Registry {
	o = o.withDefaults()
	r := &Registry{kv: kv, log: o.Logger, keys: newCache[Key](o.CacheEntries, o.CacheTTL), props: newCache[Property](o.CacheEntries, o.CacheTTL)}
	r.feed = newFeed(r)
	return r
}

// CacheBytes estimates the bytes of what the registry keeps in this
// process's memory (at most Options.CacheEntries keys and as many
// properties, whatever the registry holds; CacheStats counts them).
func (r *Registry) CacheBytes() int {
	kb := r.keys.bytes(func(k Key) int { return len(k.ID) + len(k.PropertyID) + len(k.Scope) + len(k.Hint) })
	pb := r.props.bytes(func(p Property) int {
		n := len(p.ID) + len(p.Name) + len(p.TimeZone)
		for _, l := range [][]string{p.AllowedOrigins, p.KeyEvents, p.CustomEventDimensions, p.CustomUserDimensions, p.CustomEventMetrics} {
			for _, o := range l {
				n += int(unsafe.Sizeof("")) + len(o)
			}
		}
		return n + len(p.CurrencyCode) + len(p.CurrencyRates)*(int(unsafe.Sizeof(""))+3+8+16)
	})
	return kb + pb
}

// shards spreads properties and keys over store partitions: 1M properties
// make about 4,000 rows per partition.
const shards = 256

func shardOf(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%02x", h.Sum32()%shards)
}

func propKey(id string) []byte { return []byte("property." + shardOf(id) + "/" + id) }

const (
	maxNameLen    = 200
	maxOrigins    = 100
	maxPageSize   = 1000
	defaultPage   = 100
	idSpace       = 9_000_000_000
	idBase        = 1_000_000_000
	maxGraceDays  = 30
	maxOriginsLen = 2048
)

// validate checks a property's settable fields and normalises them;
// violations name the fields as the API does (displayName, timeZone,
// allowedOrigins[i]).
func validate(p *Property) error {
	var vs []apierror.Violation
	p.Name = strings.TrimSpace(p.Name)
	switch {
	case p.Name == "":
		vs = append(vs, apierror.Violation{Field: "displayName", Description: "required", Code: apierror.ValueRequired})
	case utf8.RuneCountInString(p.Name) > maxNameLen || !utf8.ValidString(p.Name) || strings.ContainsRune(p.Name, 0):
		vs = append(vs, apierror.Violation{Field: "displayName", Description: fmt.Sprintf("at most %d characters of valid UTF-8", maxNameLen), Code: apierror.ValueInvalid})
	}
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil || strings.EqualFold(p.TimeZone, "local") {
		vs = append(vs, apierror.Violation{Field: "timeZone", Description: "unknown IANA time zone", Code: apierror.ValueInvalid})
	}
	if len(p.AllowedOrigins) > maxOrigins {
		vs = append(vs, apierror.Violation{Field: "allowedOrigins", Description: fmt.Sprintf("at most %d origins", maxOrigins), Code: apierror.ExceededMaxEntities})
	}
	origins := make([]string, 0, len(p.AllowedOrigins))
	for i, o := range p.AllowedOrigins {
		norm, ok := normOrigin(o)
		if !ok {
			vs = append(vs, apierror.Violation{Field: fmt.Sprintf("allowedOrigins[%d]", i), Description: "an origin is scheme://host[:port] with scheme http or https", Code: apierror.ValueInvalid})
			continue
		}
		origins = append(origins, norm)
	}
	p.AllowedOrigins = origins
	vs = validateReporting(p, vs)
	if len(vs) > 0 {
		return apierror.Invalid("invalid property", vs...)
	}
	return nil
}

// Limits of a property's reporting settings (GA4's standard property
// allows 30 key events, 50 event- and 25 user-scoped custom dimensions, 50
// custom metrics).
const (
	maxKeyEvents       = 30
	maxCustomEventDims = 50
	maxCustomUserDims  = 25
	maxCustomMetrics   = 50
	maxRates           = 200
)

// validateReporting checks the currency, rates, key events and custom
// definitions, normalising them (codes upper case, names deduplicated in
// order).
func validateReporting(p *Property, vs []apierror.Violation) []apierror.Violation {
	p.CurrencyCode = strings.ToUpper(strings.TrimSpace(p.CurrencyCode))
	if p.CurrencyCode != "" && !IsCurrencyCode(p.CurrencyCode) {
		vs = append(vs, apierror.Violation{Field: "currencyCode", Description: "an ISO 4217 code of three letters, e.g. EUR", Code: apierror.ValueInvalid})
	}
	if len(p.CurrencyRates) > maxRates {
		vs = append(vs, apierror.Violation{Field: "currencyRates", Description: fmt.Sprintf("at most %d rates", maxRates), Code: apierror.ExceededMaxEntities})
	}
	rates := make(map[string]float64, len(p.CurrencyRates))
	for _, c := range slices.Sorted(maps.Keys(p.CurrencyRates)) {
		r := p.CurrencyRates[c]
		u := strings.ToUpper(c)
		if !IsCurrencyCode(u) || !(r > 0) || math.IsInf(r, 0) {
			vs = append(vs, apierror.Violation{Field: "currencyRates[" + strconv.Quote(c) + "]", Description: "a currency code and a positive rate into currencyCode", Code: apierror.ValueInvalid})
			continue
		}
		rates[u] = r
	}
	p.CurrencyRates = rates
	if len(rates) == 0 {
		p.CurrencyRates = nil
	}
	vs, p.KeyEvents = names(vs, "keyEvents", p.KeyEvents, maxKeyEvents, 40)
	vs, p.CustomEventDimensions = names(vs, "customEventDimensions", p.CustomEventDimensions, maxCustomEventDims, 40)
	vs, p.CustomUserDimensions = names(vs, "customUserDimensions", p.CustomUserDimensions, maxCustomUserDims, 24)
	vs, p.CustomEventMetrics = names(vs, "customEventMetrics", p.CustomEventMetrics, maxCustomMetrics, 40)
	if m := p.DataRetentionMonths; m != 0 && (m < MinRetentionMonths || m > MaxRetentionMonths) {
		vs = append(vs, apierror.Violation{Field: "dataRetentionMonths", Code: apierror.ValueOutOfBounds,
			Description: fmt.Sprintf("0 (keep events) or %d to %d months (GA4 offers 2, 14, 26, 38 and 50)", MinRetentionMonths, MaxRetentionMonths)})
	}
	return vs
}

// Bounds of Property.DataRetentionMonths.
const (
	MinRetentionMonths = 2
	MaxRetentionMonths = 1200
)

// names checks a list of GA4 names ([A-Za-z][A-Za-z0-9_]*, at most
// maxLen) and drops duplicates.
func names(vs []apierror.Violation, field string, in []string, maxN, maxLen int) ([]apierror.Violation, []string) {
	if len(in) > maxN {
		return append(vs, apierror.Violation{Field: field, Description: fmt.Sprintf("at most %d", maxN), Code: apierror.ExceededMaxEntities}), in
	}
	var out []string
	for i, n := range in {
		if !isName(n, maxLen) {
			vs = append(vs, apierror.Violation{Field: fmt.Sprintf("%s[%d]", field, i), Description: fmt.Sprintf("a name of at most %d letters, digits and underscores, starting with a letter", maxLen), Code: apierror.NameInvalid})
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return vs, out
}

func isName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i, c := range []byte(s) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// IsCurrencyCode reports whether s has the shape of an ISO 4217 code.
func IsCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func normOrigin(o string) (string, bool) {
	o = strings.TrimRight(strings.TrimSpace(o), "/")
	if len(o) > maxOriginsLen {
		return "", false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// Create registers a property (its name, time zone and allowed origins)
// and returns it with a new write key and read key.
func (r *Registry) Create(ctx context.Context, p Property) (Property, Keys, error) {
	if err := validate(&p); err != nil {
		return Property{}, Keys{}, err
	}
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(idSpace))
		if err != nil {
			return Property{}, Keys{}, err
		}
		p.ID = fmt.Sprint(idBase + n.Int64())
		if _, err := r.kv.Get(ctx, propKey(p.ID)); errors.Is(err, metadata.ErrNotFound) {
			break
		} else if err != nil {
			return Property{}, Keys{}, fmt.Errorf("property: %w", err)
		}
	}
	p.CreatedAt = time.Now().UTC().Truncate(time.Second)
	p.UpdatedAt = p.CreatedAt
	// The keys first: a property is visible once it has its keys.
	keys := Keys{PropertyID: p.ID}
	var err error
	if keys.Write, keys.WriteKey, err = r.createKey(ctx, p.ID, Write); err != nil {
		return Property{}, Keys{}, err
	}
	if keys.Read, keys.ReadKey, err = r.createKey(ctx, p.ID, Read); err != nil {
		return Property{}, Keys{}, err
	}
	if err := r.putProperty(ctx, p); err != nil {
		return Property{}, Keys{}, err
	}
	return p, keys, nil
}

func (r *Registry) putProperty(ctx context.Context, p Property) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("property: encode: %w", err)
	}
	if err := r.kv.Put(ctx, propKey(p.ID), b); err != nil {
		return fmt.Errorf("property: store: %w", err)
	}
	r.props.put(p.ID, p)
	return nil
}

// Get returns a property.
func (r *Registry) Get(ctx context.Context, id string) (Property, error) {
	if p, ok := r.props.get(id); ok {
		return p, nil
	}
	if !validID(id) {
		return Property{}, apierror.New(apierror.NotFound, "property %q not found", id)
	}
	epoch := r.props.begin()
	b, err := r.kv.Get(ctx, propKey(id))
	if errors.Is(err, metadata.ErrNotFound) {
		return Property{}, apierror.New(apierror.NotFound, "property %q not found", id)
	}
	if err != nil {
		return Property{}, fmt.Errorf("property: %w", err)
	}
	var p Property
	if err := json.Unmarshal(b, &p); err != nil {
		return Property{}, fmt.Errorf("property: decode %s: %w", id, err)
	}
	r.props.putIf(id, p, epoch)
	return p, nil
}

// validID reports whether id can name a property (decimal digits).
func validID(id string) bool {
	if id == "" || len(id) > 20 {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Patch names the fields Update sets; nil fields stay.
type Patch struct {
	Name           *string
	TimeZone       *string
	AllowedOrigins *[]string
	CurrencyCode   *string
	CurrencyRates  *map[string]float64
	KeyEvents      *[]string
	// Custom definitions.
	CustomEventDimensions, CustomUserDimensions, CustomEventMetrics *[]string
	DataRetentionMonths                                             *int
}

// Update changes a property's settable fields.
func (r *Registry) Update(ctx context.Context, id string, patch Patch) (Property, error) {
	p, err := r.fresh(ctx, id)
	if err != nil {
		return Property{}, err
	}
	if patch.Name != nil {
		p.Name = *patch.Name
	}
	if patch.TimeZone != nil {
		p.TimeZone = *patch.TimeZone
	}
	if patch.AllowedOrigins != nil {
		p.AllowedOrigins = append([]string(nil), (*patch.AllowedOrigins)...)
	}
	if patch.CurrencyCode != nil {
		p.CurrencyCode = *patch.CurrencyCode
	}
	if patch.CurrencyRates != nil {
		p.CurrencyRates = maps.Clone(*patch.CurrencyRates)
	}
	for _, f := range []struct{ dst, src *[]string }{
		{&p.KeyEvents, patch.KeyEvents}, {&p.CustomEventDimensions, patch.CustomEventDimensions},
		{&p.CustomUserDimensions, patch.CustomUserDimensions}, {&p.CustomEventMetrics, patch.CustomEventMetrics},
	} {
		if f.src != nil {
			*f.dst = slices.Clone(*f.src)
		}
	}
	if patch.DataRetentionMonths != nil {
		p.DataRetentionMonths = *patch.DataRetentionMonths
	}
	if err := validate(&p); err != nil {
		return Property{}, err
	}
	p.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	if err := r.putProperty(ctx, p); err != nil {
		return Property{}, err
	}
	if err := r.feed.publish(ctx, "p:"+id); err != nil {
		return Property{}, err
	}
	return p, nil
}

// fresh reads a property from the store, not the cache.
func (r *Registry) fresh(ctx context.Context, id string) (Property, error) {
	r.props.drop(id)
	return r.Get(ctx, id)
}

// Delete deletes a property and revokes its keys.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if _, err := r.fresh(ctx, id); err != nil {
		return err
	}
	// Keys first: once the property is gone its keys must be too, and a
	// failure half way leaves a property that can be deleted again.
	keys, err := r.ListKeys(ctx, id, true)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Revoked {
			continue
		}
		if _, err := r.RevokeKey(ctx, id, k.ID); err != nil {
			return err
		}
	}
	if err := r.kv.Delete(ctx, propKey(id)); err != nil {
		return fmt.Errorf("property: delete: %w", err)
	}
	r.props.drop(id)
	return r.feed.publish(ctx, "p:"+id)
}

// Any reports whether at least one property exists.
func (r *Registry) Any(ctx context.Context) (bool, error) {
	list, _, err := r.List(ctx, 1, "")
	return len(list) > 0, err
}

// List returns up to pageSize properties after token (from a previous
// call's answer; "" for the first page) and the token of the next page
// ("" after the last).
func (r *Registry) List(ctx context.Context, pageSize int, token string) ([]Property, string, error) {
	if pageSize <= 0 {
		pageSize = defaultPage
	}
	if pageSize > maxPageSize {
		pageSize = maxPageSize
	}
	shard, after := 0, ""
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		s, a, ok := strings.Cut(string(b), "/")
		n, perr := strconv.ParseUint(s, 16, 8)
		if err != nil || !ok || perr != nil || len(s) != 2 {
			return nil, "", apierror.Invalid("invalid page token", apierror.Violation{Field: "pageToken", Description: "not a token this API returned", Code: apierror.ValueInvalid})
		}
		shard, after = int(n), a
	}
	var out []Property
	var last string
	for ; shard < shards; shard, after = shard+1, "" {
		prefix := fmt.Appendf(nil, "property.%02x/", shard)
		err := r.kv.Scan(ctx, prefix, func(k, v []byte) error {
			id := string(k[len(prefix):])
			if after != "" && id <= after {
				return nil
			}
			if len(out) == pageSize {
				return errFull
			}
			var p Property
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("property: decode %s: %w", id, err)
			}
			out = append(out, p)
			last = fmt.Sprintf("%02x/%s", shard, id)
			return nil
		})
		if errors.Is(err, errFull) {
			return out, base64.RawURLEncoding.EncodeToString([]byte(last)), nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("property: list: %w", err)
		}
	}
	return out, "", nil
}

var errFull = errors.New("page full")

// OriginAllowed reports whether a browser on origin may send hits to the
// property. Requests without an origin (apps, servers) are not browsers.
func (r *Registry) OriginAllowed(ctx context.Context, id, origin string) (bool, error) {
	if origin == "" {
		return true, nil
	}
	p, err := r.Get(ctx, id)
	if err != nil {
		return false, err
	}
	return p.AllowsOrigin(origin), nil
}

// AllowsOrigin reports whether a browser at origin may send p hits: any
// may when p lists none.
func (p Property) AllowsOrigin(origin string) bool {
	if origin == "" || len(p.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range p.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
