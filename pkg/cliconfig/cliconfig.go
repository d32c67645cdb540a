// Package cliconfig is the command line's configuration file: named
// contexts, each a server and the keys to call it with, and the current
// one, like kubeconfig's contexts. The file holds keys: it is written with
// mode 0600 in a directory made with mode 0700, atomically (a temporary
// file renamed over it), and a file others can read or write is refused.
package cliconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
)

// Context is how to reach one Sextant server.
type Context struct {
	// Server is the server's (or gateway's) URL, http://host:port.
	Server     string `json:"server,omitempty"`
	AdminKey   string `json:"adminKey,omitempty"`
	ReadKey    string `json:"readKey,omitempty"`
	WriteKey   string `json:"writeKey,omitempty"`
	PropertyID string `json:"propertyId,omitempty"`
}

// Config is the file's content.
type Config struct {
	// Current is the context commands use when none is named.
	Current  string             `json:"current,omitempty"`
	Contexts map[string]Context `json:"contexts,omitempty"`
}

var (
	// ErrNoContext: no context of that name.
	ErrNoContext = errors.New("no such context")
	// ErrInsecure: the file can be read or written by others than its
	// owner.
	ErrInsecure = errors.New("readable or writable by others")
)

// DefaultPath is config.json in the user's configuration directory's
// sextant directory: ~/.config/sextant/config.json on Linux
// ($XDG_CONFIG_HOME when set), ~/Library/Application Support/sextant on
// macOS, %AppData%\sextant on Windows.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("the user's configuration directory: %w", err)
	}
	return filepath.Join(dir, "sextant", "config.json"), nil
}

// Load reads the file at path; a file that does not exist is an empty
// Config.
func Load(path string) (Config, error) {
	var c Config
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return c, fmt.Errorf("config %s (mode %#o) is %w: it holds keys; chmod 600 %s", path, perm, ErrInsecure, path)
	}
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Save writes c to path: its directory is made with mode 0700 when
// missing, and the file is written to a temporary file of mode 0600 in
// it, synced and renamed over path.
func Save(path string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is none
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("config %s: %w", path, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return nil
}

// Names are the contexts' names, sorted.
func (c Config) Names() []string { return slices.Sorted(maps.Keys(c.Contexts)) }

// Get returns the context name; "" is the current one, and no name
// nor current one is an empty context.
func (c Config) Get(name string) (string, Context, error) {
	if name == "" {
		name = c.Current
	}
	if name == "" {
		return "", Context{}, nil
	}
	ctx, ok := c.Contexts[name]
	if !ok {
		return name, Context{}, fmt.Errorf("context %q: %w", name, ErrNoContext)
	}
	return name, ctx, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName checks a context's name: letters, digits, '.', '_' and '-',
// starting with a letter or digit, at most 64.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("context name %q: letters, digits, '.', '_' and '-', starting with a letter or a digit, at most 64", name)
	}
	return nil
}

// ServerURL normalises a server address: host:port becomes
// http://host:port; a URL must be http or https, with a host.
func ServerURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q: want http://host:port or https://host:port", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Mask shows a secret as its prefix (sxa_, sxr_, sxw_ …) and its last
// four characters, never whole: sxa_…x9Yz.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	prefix := ""
	if i := strings.IndexByte(secret, '_'); i > 0 && i <= 4 {
		prefix = secret[:i+1]
	}
	rest := secret[len(prefix):]
	if len(rest) < 16 {
		return prefix + "…"
	}
	return prefix + "…" + rest[len(rest)-4:]
}
