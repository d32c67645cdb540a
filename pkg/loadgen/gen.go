// Package loadgen generates realistic, deterministic synthetic analytics
// traffic for load tests and benchmarks: visitors of many properties, each
// with sessions separated by at least 30 minutes of inactivity
// (ga_session_id / ga_session_number), Zipf-distributed page paths, a mix of
// devices (User-Agent strings), countries (userLocation.countryId) and
// traffic sources (utm parameters, gclid, search and social referrers).
//
// A Generator produces the batches of one property. It is a pure function of
// its Config and property index: the same seed gives the same batches, byte
// for byte, whatever sends them. Every event carries an event id, so a
// batch resent after a failure is deduplicated by Sextant. Truth accumulates
// the exact aggregates Sextant should report for the batches that were
// acknowledged.
//
// The package does no I/O: pkg/loadgen/driver sends the batches (for
// `sextant loadgen`) over gRPC or REST.
package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Config shapes the traffic. Zero fields take the defaults of DefaultConfig,
// except Seed, History, NewVisitors and Bots, whose zero is meaningful
// (start from DefaultConfig to get its shares).
type Config struct {
	// Seed makes the traffic: two generators with the same Config and
	// property index produce the same batches. Different seeds produce
	// different visitors and event ids, so runs with different seeds
	// against the same property add up instead of being deduplicated.
	Seed int64
	// BatchSize is the number of events per batch (a batch holds the
	// events of one visitor, as an SDK uploads its queue). 1..500.
	BatchSize int
	// Active is how many visitors of a property are in progress at once;
	// batches interleave their events.
	Active int
	// Pages is the number of distinct page paths of a property.
	Pages int
	// ZipfS is the exponent of the page popularity distribution
	// (P(rank k) ∝ (k+1)^-s); it must be > 1.
	ZipfS float64
	// SessionEvents is the mean number of events of a session (at least 3:
	// session_start, the landing page_view, and the rest).
	SessionEvents float64
	// SessionGap is the inactivity that separates two sessions of a
	// visitor (GA4: 30 minutes); consecutive sessions are always further
	// apart than this.
	SessionGap time.Duration
	// MeanExtraGap is the mean of the exponentially distributed time
	// between sessions beyond SessionGap.
	MeanExtraGap time.Duration
	// VisitorEvents is the mean number of events a visitor sends in the
	// window. A visitor sends a whole multiple of BatchSize events (at
	// least one batch), so batches are full.
	VisitorEvents float64
	// History spreads event times over [End-History, End]; each
	// visitor's sessions fit in the window. Sextant accepts event times up
	// to 72 h old, so History plus the run's duration must stay below
	// that. Zero sends no event times: Sextant uses its receive time, and
	// session ids are still distinct per session.
	History time.Duration
	// TimeOrder, when positive, is how many events this generator is
	// expected to make: visitors then start at a point of the History
	// window that advances with the events made (the first ones at its
	// start, the last ones at its end), so event times follow the order
	// of sending, as live traffic or a backfill in time order have them,
	// instead of being spread over the window at random. A visitor's
	// sessions still run on from its start.
	TimeOrder int64
	// End is the end of the time window, normally the run's start. Zero
	// means 2026-01-01T00:00:00Z (only sensible with History 0).
	End time.Time
	// NewVisitors is the share of visitors that are new (their first
	// session starts with first_visit; the others have earlier sessions
	// before the window, so their ga_session_number starts above 1).
	NewVisitors float64
	// Bots is the share of visitors that are crawlers (Googlebot UA,
	// page views only); Sextant's traffic/v2 excludes them.
	Bots float64
	// MaxAge is the oldest event time the server takes, which History
	// must not pass: Sextant's collect takes 72 h (the default), a demo
	// property more (sextant serve --demo).
	MaxAge time.Duration
	// Cities gives each visitor a city of its country and the city's
	// region (ISO 3166-2), sent as userLocation.city and regionId besides
	// the country; everything else is as without it.
	Cities bool
	// DailyRhythm makes visitors start their visits by a daily and
	// weekly rhythm, by UTC time: most in the evening, fewest at night,
	// fewer at the weekend, instead of evenly over History. It does not
	// apply with TimeOrder.
	DailyRhythm bool
	// Growth, with DailyRhythm, is how many more visits start each day
	// than the day before (0.03: 3 % more), as for a growing shop.
	Growth float64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Seed:          1,
		BatchSize:     25,
		Active:        256,
		Pages:         2000,
		ZipfS:         1.1,
		SessionEvents: 8,
		SessionGap:    30 * time.Minute,
		MeanExtraGap:  4 * time.Hour,
		VisitorEvents: 30,
		NewVisitors:   0.4,
		Bots:          0.005,
	}
}

// MaxBatchSize is Sextant's default batch limit.
const MaxBatchSize = 500

// DefaultMaxAge is how old an event time Sextant's collect takes by
// default (collect.Limits.MaxPast).
const DefaultMaxAge = 72 * time.Hour

// WithDefaults fills in zero fields and validates the config.
func (c Config) WithDefaults() (Config, error) {
	d := DefaultConfig()
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.Active == 0 {
		c.Active = d.Active
	}
	if c.Pages == 0 {
		c.Pages = d.Pages
	}
	if c.ZipfS == 0 {
		c.ZipfS = d.ZipfS
	}
	if c.SessionEvents == 0 {
		c.SessionEvents = d.SessionEvents
	}
	if c.SessionGap == 0 {
		c.SessionGap = d.SessionGap
	}
	if c.MeanExtraGap == 0 {
		c.MeanExtraGap = d.MeanExtraGap
	}
	if c.VisitorEvents == 0 {
		c.VisitorEvents = d.VisitorEvents
	}
	if c.End.IsZero() {
		c.End = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	switch {
	case c.BatchSize < 1 || c.BatchSize > MaxBatchSize:
		return c, fmt.Errorf("loadgen: batch size %d out of 1..%d", c.BatchSize, MaxBatchSize)
	case c.Active < 1:
		return c, fmt.Errorf("loadgen: active visitors must be positive")
	case c.Pages < 1:
		return c, fmt.Errorf("loadgen: pages must be positive")
	case !(c.ZipfS > 1):
		return c, fmt.Errorf("loadgen: zipf exponent must be > 1, got %v", c.ZipfS)
	case c.SessionEvents < 3:
		return c, fmt.Errorf("loadgen: mean session events must be at least 3")
	case c.VisitorEvents < 3:
		return c, fmt.Errorf("loadgen: mean events per visitor must be at least 3")
	case c.TimeOrder < 0:
		return c, fmt.Errorf("loadgen: time order must not be negative")
	case c.MaxAge < 0:
		return c, fmt.Errorf("loadgen: max age must not be negative")
	case c.History < 0 || c.History > c.MaxAge:
		return c, fmt.Errorf("loadgen: history %v out of 0..%v (Sextant rejects older events)", c.History, c.MaxAge)
	case c.History > 0 && c.History < c.SessionGap:
		return c, fmt.Errorf("loadgen: history %v is shorter than the session gap %v", c.History, c.SessionGap)
	case c.Growth < 0 || c.Growth > 1:
		return c, fmt.Errorf("loadgen: daily growth %v out of [0, 1]", c.Growth)
	case c.NewVisitors < 0 || c.NewVisitors > 1 || c.Bots < 0 || c.Bots > 1:
		return c, fmt.Errorf("loadgen: shares must be in [0, 1]")
	}
	return c, nil
}

// Event is one generated event, as sent to CollectService.
type Event struct {
	Name string
	ID   string
	// TimeMicros is the event time; 0 when the server's receive time is
	// the event time (Config.History 0).
	TimeMicros int64
	// Location is page_location; Path is the page path Sextant derives
	// from it (the pagePath dimension).
	Location, Path string
	Referrer       string // page_referrer, "" for none
	Title          string // page_title
	SessionID      int64  // ga_session_id: the session's start, Unix seconds
	SessionNumber  int64  // ga_session_number
	EngagementMsec int64  // engagement_time_msec, 0 for none
	Params         []Param
	// Items are the ecommerce items of view_item, add_to_cart and
	// purchase events (the items parameter).
	Items []Item
}

// Item is one entry of an event's items.
type Item struct {
	ID, Name, Brand, Category string
	Price                     float64
	Quantity                  int64
}

// Param is one more event parameter: a string or a number.
type Param struct {
	Name  string
	Str   string
	Num   float64
	IsNum bool
}

// Batch is one collect request: events of one visitor of one property.
type Batch struct {
	Property  int    // the property's index
	Seq       uint64 // the batch's number within its property, from 1
	Visitor   int64  // the visitor's index within its property
	ClientID  string
	UserAgent string
	Country   string // ISO 3166-1 alpha-2, sent as userLocation.countryId
	// City and Region (ISO 3166-2) are sent as userLocation.city and
	// regionId (Config.Cities; "" without).
	City, Region string
	Bot          bool
	Events       []Event
}

// Generator makes the batches of one property. It is not safe for
// concurrent use.
type Generator struct {
	cfg      Config
	property int
	rng      *rand.Rand
	cityRng  *rand.Rand // Config.Cities: apart, so that the rest is the same
	zipf     *rand.Zipf
	active   []*visitor
	visitors int64  // visitors created
	events   uint64 // events generated
	batches  uint64
	host     string
	idPrefix string
	window   int64 // micros
	end      int64 // micros
}

// New returns the generator of property index property (0, 1, …).
func New(cfg Config, property int) (*Generator, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5e7a47<<20|uint64(property)))
	g := &Generator{
		cfg:      cfg,
		property: property,
		rng:      rng,
		cityRng:  rand.New(rand.NewPCG(uint64(cfg.Seed), 0xc17e5<<20|uint64(property))),
		zipf:     rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Pages-1)),
		host:     "https://www.shop" + strconv.Itoa(property+1) + ".example",
		idPrefix: "lg" + strconv.FormatUint(uint64(cfg.Seed), 36) + "-" + strconv.Itoa(property) + "-",
		end:      cfg.End.UnixMicro(),
	}
	g.window = int64(cfg.History / time.Microsecond)
	if g.window == 0 {
		// Without event times, sessions are still laid out in a virtual
		// day for their ids and numbers.
		g.window = int64(24 * time.Hour / time.Microsecond)
	}
	g.active = make([]*visitor, cfg.Active)
	for i := range g.active {
		g.active[i] = g.newVisitor()
	}
	return g, nil
}

// Config returns the generator's config, defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// Events returns how many events the generator has made.
func (g *Generator) Events() uint64 { return g.events }

// Next returns the next batch: BatchSize events of one visitor, or fewer
// when limit (if positive) is smaller.
func (g *Generator) Next(limit int) *Batch {
	n := g.cfg.BatchSize
	if limit > 0 && limit < n {
		n = limit
	}
	slot := g.rng.IntN(len(g.active))
	v := g.active[slot]
	n = min(n, v.remaining)
	g.batches++
	b := &Batch{
		Property:  g.property,
		Seq:       g.batches,
		Visitor:   v.index,
		ClientID:  v.clientID,
		UserAgent: devices[v.device].ua,
		Country:   v.country,
		City:      v.city,
		Region:    v.region,
		Bot:       v.bot,
		Events:    make([]Event, n),
	}
	for i := range b.Events {
		g.nextEvent(v, &b.Events[i])
	}
	if v.remaining == 0 {
		g.active[slot] = g.newVisitor()
	}
	return b
}

// visitor is a visitor in progress: its planned sessions and where it is.
type visitor struct {
	index     int64
	clientID  string
	device    int
	country   string
	city      string
	region    string
	bot       bool
	isNew     bool
	prior     int64 // sessions before the window
	sessions  []session
	cur       int // current session
	inSession int // events emitted in the current session
	remaining int // events left to send
	location  string
	path      string
	referrer  string
	title     string
}

type session struct {
	start   int64 // micros
	events  int
	spacing int64 // micros between events
	source  int   // index into sources
}

// geometric draws from a geometric distribution on {0, 1, …} with the given
// mean.
func geometric(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	p := 1 / (mean + 1)
	u := r.Float64()
	if u == 0 {
		return 0
	}
	return int(math.Log(u) / math.Log(1-p))
}

func (g *Generator) newVisitor() *visitor {
	r, cfg := g.rng, &g.cfg
	g.visitors++
	v := &visitor{index: g.visitors - 1}
	v.bot = r.Float64() < cfg.Bots
	v.device = pick(r, deviceWeights)
	if v.bot {
		v.device = botDevice
	}
	v.country = countries[pick(r, countryWeights)].code
	if cfg.Cities {
		cs := citiesOf[v.country]
		c := cs.cities[pick(g.cityRng, cs.weights)]
		v.city, v.region = c.name, c.region
	}
	v.isNew = !v.bot && r.Float64() < cfg.NewVisitors
	if !v.isNew {
		v.prior = 1 + int64(geometric(r, 2))
	}
	// A GA-style client id: random number, then first-visit time.
	v.clientID = strconv.FormatInt(1_000_000_000+r.Int64N(8_999_999_999), 10) + "." + strconv.FormatInt(1_600_000_000+v.index, 10)

	// Events: a whole number of batches, laid out in sessions.
	want := 3 + geometric(r, cfg.VisitorEvents-3)
	total := cfg.BatchSize * max(1, (want+cfg.BatchSize/2)/cfg.BatchSize)
	v.remaining = total
	var ss []session
	for sum := 0; sum < total; {
		n := min(3+geometric(r, cfg.SessionEvents-3), total-sum)
		sum += n
		ss = append(ss, session{
			events:  n,
			spacing: int64(5+r.IntN(36)) * 1_000_000,
			source:  pick(r, sourceWeights),
		})
	}
	dur := func(s session) int64 { return int64(s.events-1) * s.spacing }
	minGap := int64(cfg.SessionGap/time.Microsecond) + 1_000_000
	need := func() int64 {
		n := int64(len(ss)-1) * minGap
		for _, s := range ss {
			n += dur(s)
		}
		return n
	}
	// Fit the sessions in the window: fewer, longer sessions when there
	// is no room for all of them, denser events when one is too long.
	for need() > g.window && len(ss) > 1 {
		last := ss[len(ss)-1]
		ss = ss[:len(ss)-1]
		ss[len(ss)-1].events += last.events
	}
	if len(ss) == 1 && dur(ss[0]) > g.window*9/10 {
		ss[0].spacing = max(1, g.window*9/10/int64(ss[0].events-1))
	}
	extras := make([]int64, len(ss))
	var extraSum int64
	for i := 1; i < len(ss); i++ {
		extras[i] = int64(r.ExpFloat64() * float64(cfg.MeanExtraGap/time.Microsecond))
		extraSum += extras[i]
	}
	room := (g.window - need()) * 98 / 100
	if g.cfg.TimeOrder > 0 {
		// Visitors come back within hours rather than days, so that the
		// traffic of a stretch of sending stays near the cursor.
		room = min(room, g.window/32)
	}
	if extraSum > room {
		for i := range extras {
			extras[i] = int64(float64(extras[i]) * float64(room) / float64(extraSum))
		}
		extraSum = 0
		for _, e := range extras {
			extraSum += e
		}
	}
	span := need() + extraSum
	t := g.end - g.window
	if free := g.window - span; free > 0 {
		if g.cfg.TimeOrder > 0 {
			// The cursor, and up to a session gap of jitter.
			cursor := int64(float64(free) * min(1, float64(g.events)/float64(g.cfg.TimeOrder)))
			t += min(free, cursor+r.Int64N(minGap))
		} else if g.cfg.DailyRhythm {
			t += g.rhythmic(t, free)
		} else {
			t += r.Int64N(free)
		}
	}
	// Whole seconds, so that ga_session_id is the first event's time.
	t -= t % 1_000_000
	for i := range ss {
		if i > 0 {
			t += minGap + extras[i]
			t -= t % 1_000_000
			if prev := ss[i-1].start + dur(ss[i-1]); t-prev <= minGap-1_000_000 {
				t = prev + minGap
				t -= t % 1_000_000
			}
		}
		ss[i].start = t
		t += dur(ss[i])
	}
	v.sessions = ss
	return v
}

// nextEvent fills in the visitor's next event.
func (g *Generator) nextEvent(v *visitor, e *Event) {
	r := g.rng
	s := &v.sessions[v.cur]
	i := v.inSession
	g.events++
	e.ID = g.idPrefix + strconv.FormatUint(g.events, 36)
	t := s.start + int64(i)*s.spacing
	if g.cfg.History > 0 {
		e.TimeMicros = t
	}
	e.SessionID = s.start / 1_000_000
	e.SessionNumber = v.prior + int64(v.cur) + 1

	// Session start: the landing page, with the session's source.
	first := 0
	if v.isNew && v.cur == 0 {
		first = 1 // first_visit comes before session_start
	}
	switch {
	case v.bot:
		e.Name = "page_view"
		g.page(v, -1)
	case i == 0 && first == 1:
		e.Name = "first_visit"
		g.page(v, s.source)
	case i == first:
		e.Name = "session_start"
		if first == 0 {
			g.page(v, s.source)
		}
	case i == first+1:
		e.Name = "page_view"
	default:
		e.Name = eventNames[pick(r, eventWeights)]
		if e.Name == "page_view" {
			g.page(v, -1)
		}
	}
	e.Location, e.Path, e.Referrer, e.Title = v.location, v.path, v.referrer, v.title
	d := &devices[v.device]
	e.Params = append(e.Params[:0],
		Param{Name: "language", Str: countries[countryIndex[v.country]].lang},
		Param{Name: "screen_resolution", Str: d.screen},
	)
	switch e.Name {
	case "user_engagement":
		e.EngagementMsec = 1000 + r.Int64N(59_000)
	case "scroll":
		e.EngagementMsec = 500 + r.Int64N(9_500)
		e.Params = append(e.Params, Param{Name: "percent_scrolled", Num: 90, IsNum: true})
	case "click":
		e.Params = append(e.Params,
			Param{Name: "link_url", Str: "https://partner" + strconv.Itoa(1+r.IntN(20)) + ".example/"},
			Param{Name: "outbound", Str: "true"})
	case "view_item", "add_to_cart":
		it := catalogItem(r.IntN(500), 1)
		e.Items = append(e.Items[:0], it)
		if e.Name == "add_to_cart" {
			e.Params = append(e.Params, Param{Name: "value", Num: it.Price, IsNum: true}, Param{Name: "currency", Str: "USD"})
		}
	case "purchase":
		e.Items = e.Items[:0]
		value := 0.0
		for range 1 + r.IntN(3) {
			it := catalogItem(r.IntN(500), 1+r.Int64N(3))
			e.Items = append(e.Items, it)
			value += it.Price * float64(it.Quantity)
		}
		e.Params = append(e.Params,
			Param{Name: "transaction_id", Str: "T-" + e.ID},
			Param{Name: "value", Num: math.Round(value*100) / 100, IsNum: true},
			Param{Name: "currency", Str: "USD"})
	default:
		e.Items = e.Items[:0]
	}

	v.inSession++
	v.remaining--
	if v.inSession == s.events && v.cur < len(v.sessions)-1 {
		v.cur++
		v.inSession = 0
	}
}

// Brands and categories of the shop's 500 items.
var (
	itemBrands     = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell"}
	itemCategories = []string{"Apparel", "Shoes", "Home", "Books", "Toys", "Garden", "Electronics", "Sports", "Beauty", "Food", "Music"}
)

// catalogItem is item n of the shop, qty units of it.
func catalogItem(n int, qty int64) Item {
	return Item{ID: "SKU-" + strconv.Itoa(n), Name: "Product " + strconv.Itoa(n), Brand: itemBrands[n%len(itemBrands)],
		Category: itemCategories[n%len(itemCategories)], Price: float64(5+n%95) + 0.99, Quantity: qty}
}

// page moves the visitor to a new page: a landing page with the traffic
// source's URL parameters and referrer when source >= 0, else a page
// reached from the previous one.
func (g *Generator) page(v *visitor, source int) {
	rank := int(g.zipf.Uint64())
	path := PagePath(rank)
	loc := g.host + path
	ref := v.location
	if source >= 0 {
		src := &sources[source]
		ref = src.referrer
		switch {
		case src.query == "gclid":
			loc += "?gclid=" + strconv.FormatUint(g.rng.Uint64()>>20, 36)
		case src.query != "":
			loc += "?" + src.query
		}
	}
	v.location, v.path, v.referrer, v.title = loc, path, ref, pageTitle(rank)
}

// PagePath is the path of the page of popularity rank (0 is the most
// popular).
func PagePath(rank int) string {
	switch {
	case rank == 0:
		return "/"
	case rank < len(fixedPages)+1:
		return fixedPages[rank-1]
	}
	k := rank - len(fixedPages) - 1
	switch k % 4 {
	case 0:
		return "/products/" + categories[(k/4)%len(categories)] + "/item-" + strconv.Itoa(k/4)
	case 1:
		return "/blog/post-" + strconv.Itoa(k/4)
	case 2:
		return "/category/" + categories[(k/4)%len(categories)] + "/page-" + strconv.Itoa(k/4/len(categories)+1)
	default:
		return "/help/article-" + strconv.Itoa(k/4)
	}
}

func pageTitle(rank int) string {
	if rank == 0 {
		return "Home - Example Shop"
	}
	return "Page " + strconv.Itoa(rank) + " - Example Shop"
}

var fixedPages = []string{"/products", "/cart", "/search", "/checkout", "/account", "/blog", "/about", "/contact", "/sale", "/new-arrivals"}

var categories = []string{"shoes", "shirts", "bags", "hats", "watches", "jackets", "socks", "belts"}

// pick draws an index with probability proportional to its weight.
func pick(r *rand.Rand, cum []float64) int {
	u := r.Float64() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > u {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

func cumulative(ws ...float64) []float64 {
	out := make([]float64, len(ws))
	s := 0.0
	for i, w := range ws {
		s += w
		out[i] = s
	}
	return out
}

var (
	eventNames   = []string{"page_view", "scroll", "user_engagement", "click", "view_item", "add_to_cart", "purchase"}
	eventWeights = cumulative(50, 15, 15, 10, 7, 2.5, 0.5)
)

type device struct {
	ua, screen string
	weight     float64
}

var devices = []device{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "1920x1080", 24},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "1440x900", 8},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "2560x1440", 6},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "1920x1080", 4},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "1366x768", 5},
	{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "1920x1080", 1},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "390x844", 22},
	{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "412x915", 16},
	{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "384x854", 6},
	{"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "820x1180", 5},
	{"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "1600x2560", 3},
	// Bots are chosen by Config.Bots, never by weight.
	{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "1024x768", 0},
}

var botDevice = len(devices) - 1

var deviceWeights = func() []float64 {
	ws := make([]float64, len(devices)-1)
	for i := range ws {
		ws[i] = devices[i].weight
	}
	return cumulative(ws...)
}()

type country struct {
	code, lang string
	weight     float64
}

var countries = []country{
	{"US", "en-us", 30}, {"IN", "en-in", 8}, {"GB", "en-gb", 7}, {"DE", "de-de", 7}, {"FR", "fr-fr", 5},
	{"BR", "pt-br", 5}, {"CA", "en-ca", 4}, {"JP", "ja-jp", 4}, {"AU", "en-au", 3}, {"ES", "es-es", 3},
	{"IT", "it-it", 3}, {"NL", "nl-nl", 2}, {"MX", "es-mx", 2}, {"PL", "pl-pl", 2}, {"SE", "sv-se", 1.5},
	{"KR", "ko-kr", 1.5}, {"TR", "tr-tr", 1.5}, {"ID", "id-id", 1.5}, {"ZA", "en-za", 1}, {"NG", "en-ng", 1},
}

var (
	countryWeights = func() []float64 {
		ws := make([]float64, len(countries))
		for i, c := range countries {
			ws[i] = c.weight
		}
		return cumulative(ws...)
	}()
	countryIndex = func() map[string]int {
		m := make(map[string]int, len(countries))
		for i, c := range countries {
			m[c.code] = i
		}
		return m
	}()
)

// source is a traffic source: the landing page's query and referrer.
type source struct {
	query, referrer string
	weight          float64
}

var sources = []source{
	{"", "", 30}, // direct
	{"", "https://www.google.com/", 28},
	{"", "https://www.bing.com/", 4},
	{"", "https://duckduckgo.com/", 3},
	{"gclid", "https://www.google.com/", 7},
	{"utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale", "", 8},
	{"utm_source=facebook&utm_medium=social&utm_campaign=retargeting", "https://m.facebook.com/", 6},
	{"", "https://www.facebook.com/", 4},
	{"", "https://t.co/", 2},
	{"", "https://blog.partner.example/best-of-2026", 5},
	{"utm_source=partner&utm_medium=affiliate&utm_campaign=q1", "https://deals.example/", 3},
}

var sourceWeights = func() []float64 {
	ws := make([]float64, len(sources))
	for i, s := range sources {
		ws[i] = s.weight
	}
	return cumulative(ws...)
}()
