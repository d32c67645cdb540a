package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/sextant-analytics/sextant/pkg/cliconfig"
)

const contextUsage = `Usage: sextant context COMMAND [NAME] [flags]

  sextant context set NAME [--server URL] [--admin-key K] [--read-key K] [--write-key K]
      [--property-id ID] [--from-env] [--use]
  sextant context use NAME
  sextant context list
  sextant context show [NAME]
  sextant context delete NAME

A context is a server and the keys to call it with, saved under a name, as
kubeconfig's contexts are. The commands that call a server (property,
projection, loadgen) take each of --server, --admin-key and --read-key from
the flag, else its environment variable (SEXTANT_SERVER …), else the
current context, else the flag's default; --context NAME (env
SEXTANT_CONTEXT) picks another context for one command.

Contexts are kept in $SEXTANT_CONFIG, else in the user's configuration
directory: ~/.config/sextant/config.json on Linux ($XDG_CONFIG_HOME when
set), ~/Library/Application Support/sextant/config.json on macOS. The file
holds keys: it is written with mode 0600 (its directory 0700), and refused
when others may read it. list and show never print a key whole.
sextant serve --save-context NAME saves the server it serves, and on its
first start the demo property's keys, as a context.
`

var contextCommands = []string{"set", "use", "list", "show", "delete"}

// contextSynopses are the usage of each context command.
var contextSynopses = map[string]string{
	"context set": `Usage: sextant context set NAME [--server URL] [--admin-key K] [--read-key K] [--write-key K]
      [--property-id ID] [--from-env] [--use]

Creates the context NAME, or changes the values given and only those (an
empty value clears one). Its flags have no environment fallback: --from-env
takes SEXTANT_SERVER, SEXTANT_ADMIN_KEY, SEXTANT_READ_KEY, SEXTANT_WRITE_KEY
and SEXTANT_PROPERTY_ID (the lines sextant serve prints) for the values no
flag gives, which keeps keys out of the shell's history. The first context
becomes the current one; --use makes this one current.
`,
	"context use":    "Usage: sextant context use NAME\n\nMakes NAME the current context: the one commands use when neither --context\nnor SEXTANT_CONTEXT names one.\n",
	"context list":   "Usage: sextant context list\n\nLists the contexts, the current one marked *, with their keys masked.\n",
	"context show":   "Usage: sextant context show [NAME]\n\nShows the server and keys a command would use, and where each comes from\n(environment, context or default): with the context NAME, else the one\nSEXTANT_CONTEXT names, else the current one. Keys are masked.\n",
	"context delete": "Usage: sextant context delete NAME\n\nDeletes the context NAME (no longer current if it was).\n",
}

// contextValues are a context's values in the order they are shown, by
// the name of their flag.
var contextValues = []struct{ flag, label string }{
	{"server", "server"},
	{"admin-key", "admin key"},
	{"read-key", "read key"},
	{"write-key", "write key"},
	{"property-id", "property"},
}

func isKey(flagName string) bool { return flagName != "server" && flagName != "property-id" }

func contextCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, contextUsage)
		return errUsage
	}
	if isHelp(args[0]) {
		return groupHelp(contextUsage)
	}
	if !slices.Contains(contextCommands, args[0]) {
		fmt.Fprintf(stderr, "unknown context command %q\n%s", args[0], contextUsage)
		return errUsage
	}
	cmd := args[0]
	f := newFlags("context "+cmd, stderr)
	values := map[string]*string{}
	var fromEnv, use *bool
	if cmd == "set" {
		// No environment fallback (see its usage): registered on the
		// FlagSet itself.
		values["server"] = f.FlagSet.String("server", "", "the server's (or gateway's) URL, http://host:port (host:port is taken as http)")
		values["admin-key"] = f.FlagSet.String("admin-key", "", "an admin key (properties, keys, projections)")
		values["read-key"] = f.FlagSet.String("read-key", "", "a read key (reports, projection list and status)")
		values["write-key"] = f.FlagSet.String("write-key", "", "a write key (collect)")
		values["property-id"] = f.FlagSet.String("property-id", "", "the property the keys are of")
		fromEnv = f.FlagSet.Bool("from-env", false, "take the values no flag gives from SEXTANT_SERVER, SEXTANT_ADMIN_KEY, SEXTANT_READ_KEY, SEXTANT_WRITE_KEY and SEXTANT_PROPERTY_ID")
		use = f.FlagSet.Bool("use", false, "make it the current context")
	}
	pos, err := parseInterleaved(f, args[1:])
	if err != nil {
		return err
	}
	want := map[string][2]int{"set": {1, 1}, "use": {1, 1}, "list": {0, 0}, "show": {0, 1}, "delete": {1, 1}}[cmd]
	if len(pos) < want[0] || len(pos) > want[1] {
		fmt.Fprint(stderr, commandHelp(f.FlagSet))
		return errUsage
	}
	path, err := configPath()
	if err != nil {
		return err
	}
	cfg, err := cliconfig.Load(path)
	if err != nil {
		return err
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]cliconfig.Context{}
	}
	switch cmd {
	case "set":
		given := map[string]bool{}
		f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
		return setContext(path, cfg, pos[0], values, given, *fromEnv, *use, stdout)
	case "use":
		if _, _, err := cfg.Get(pos[0]); err != nil {
			return fmt.Errorf("%w in %s (see sextant context list)", err, path)
		}
		cfg.Current = pos[0]
		if err := cliconfig.Save(path, cfg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the current context is %s\n", pos[0])
		return nil
	case "delete":
		if _, _, err := cfg.Get(pos[0]); err != nil {
			return fmt.Errorf("%w in %s", err, path)
		}
		delete(cfg.Contexts, pos[0])
		if cfg.Current == pos[0] {
			cfg.Current = ""
		}
		if err := cliconfig.Save(path, cfg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted context %s\n", pos[0])
		return nil
	case "list":
		return listContexts(path, cfg, stdout)
	case "show":
		name := os.Getenv("SEXTANT_CONTEXT")
		if len(pos) == 1 {
			name = pos[0]
		}
		return showContext(path, cfg, name, stdout)
	}
	return errUsage
}

func setContext(path string, cfg cliconfig.Config, name string, values map[string]*string, given map[string]bool, fromEnv, use bool, stdout io.Writer) error {
	if err := cliconfig.ValidName(name); err != nil {
		return err
	}
	c, existed := cfg.Contexts[name]
	fields := map[string]*string{"server": &c.Server, "admin-key": &c.AdminKey, "read-key": &c.ReadKey, "write-key": &c.WriteKey, "property-id": &c.PropertyID}
	changed := 0
	for _, v := range contextValues {
		val, ok := *values[v.flag], given[v.flag]
		if !ok && fromEnv {
			val, ok = os.Getenv(envName(v.flag)), os.Getenv(envName(v.flag)) != ""
		}
		if !ok {
			continue
		}
		if v.flag == "server" && val != "" {
			u, err := cliconfig.ServerURL(val)
			if err != nil {
				return fmt.Errorf("--server: %w", err)
			}
			val = u
		}
		*fields[v.flag] = val
		changed++
	}
	if changed == 0 && existed && !use {
		return errors.New("nothing to set: give --server, --admin-key, --read-key, --write-key, --property-id, --from-env or --use")
	}
	cfg.Contexts[name] = c
	if use || cfg.Current == "" {
		cfg.Current = name
	}
	if err := cliconfig.Save(path, cfg); err != nil {
		return err
	}
	current := ""
	if cfg.Current == name {
		current = ", the current context"
	}
	fmt.Fprintf(stdout, "saved context %s in %s%s\n", name, path, current)
	return nil
}

// shown is a context's value as list and show print it: keys masked.
func shown(flagName, v string) string {
	if v == "" {
		return "-"
	}
	if isKey(flagName) {
		return cliconfig.Mask(v)
	}
	return v
}

func listContexts(path string, cfg cliconfig.Config, stdout io.Writer) error {
	if len(cfg.Contexts) == 0 {
		fmt.Fprintf(stdout, "no contexts in %s: sextant context set NAME --server URL …\n", path)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CURRENT\tNAME\tSERVER\tADMIN KEY\tREAD KEY\tWRITE KEY\tPROPERTY")
	for _, name := range cfg.Names() {
		c := cfg.Contexts[name]
		mark := ""
		if name == cfg.Current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s", mark, name)
		for _, v := range contextValues {
			fmt.Fprintf(tw, "\t%s", shown(v.flag, contextFields[v.flag](c)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// showContext prints what a command would use: each value from the
// environment, else the context, else the default (no command's flags
// are given here).
func showContext(path string, cfg cliconfig.Config, name string, stdout io.Writer) error {
	name, c, err := cfg.Get(name)
	if err != nil {
		return fmt.Errorf("%w in %s (see sextant context list)", err, path)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	switch {
	case name == "":
		fmt.Fprintf(tw, "context\tnone (no current context in %s)\n", path)
	case name == cfg.Current:
		fmt.Fprintf(tw, "context\t%s (current, in %s)\n", name, path)
	default:
		fmt.Fprintf(tw, "context\t%s (in %s)\n", name, path)
	}
	for _, v := range contextValues {
		val, from := os.Getenv(envName(v.flag)), "env "+envName(v.flag)
		if val == "" {
			val, from = contextFields[v.flag](c), "context "+name
		}
		if val == "" && v.flag == "server" {
			val, from = defaultServer, "default"
		}
		if val == "" {
			from = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.label, shown(v.flag, val), from)
	}
	return tw.Flush()
}

// serveContext saves the context name for `sextant serve --save-context`:
// the URL of the address it serves (127.0.0.1 for an unspecified
// address), and the demo property's keys when it just made them; a
// later start keeps the keys the context has.
func saveServeContext(name string, addr net.Addr, overTLS bool, demo cliconfig.Context, stdout io.Writer) error {
	path, err := configPath()
	if err != nil {
		return err
	}
	cfg, err := cliconfig.Load(path)
	if err != nil {
		return err
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]cliconfig.Context{}
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if overTLS {
		scheme = "https"
	}
	c := cfg.Contexts[name]
	if demo.AdminKey != "" {
		c = demo
	}
	c.Server = scheme + "://" + net.JoinHostPort(host, port)
	cfg.Contexts[name] = c
	cfg.Current = name
	if err := cliconfig.Save(path, cfg); err != nil {
		return fmt.Errorf("--save-context: %w", err)
	}
	what := "its server"
	if demo.AdminKey != "" {
		what = "its server and the demo property's keys"
	}
	fmt.Fprintf(stdout, "Saved the context %s (%s) in %s: it is the current context.\n", name, what, path)
	return nil
}
