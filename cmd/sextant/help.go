package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// helpError is what a command returns when asked for its usage (-h,
// --help or help): run prints text to stdout and exits 0.
type helpError struct {
	text  string
	flags *flag.FlagSet // nil for a command with subcommands
}

func (h *helpError) Error() string { return "help requested" }

// groupHelp is the answer of a command with subcommands asked for help.
func groupHelp(text string) error { return &helpError{text: text} }

// isHelp reports whether a command's first argument asks for its usage.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// synopses are the usage of each command with flags, by the name of its
// flag set; each starts with a line "Usage: sextant NAME …".
var synopses = map[string]string{
	"serve": `Usage: sextant serve [flags]

Runs the collect, projection and insights services, all of them in one
process by default (--services chooses), or the gateway in front of them.
The event log and the view store are embedded under --data-dir unless
--kafka-brokers and --cql-hosts are given; the report cache is in-process
unless --redis-addr is.
`,
	"property create": `Usage: sextant property create --name NAME [--time-zone TZ] [--allowed-origins O,…] [--json]
       sextant property create --offline --name NAME [--count N] [--json] [--data-dir DIR | --cql-hosts …]

Creates a property and prints its write and read keys, shown only this once.
It calls a running server with an admin key; --offline writes the store
itself instead (bootstrapping, with no server running on the embedded store),
and --offline --count N --json makes N properties at once.
`,
	"property list": `Usage: sextant property list [--json]
       sextant property list --offline [--json] [--data-dir DIR | --cql-hosts …]

Lists the properties.
`,
	"property get": "Usage: sextant property get PROPERTY_ID [--json]\n",
	"property update": `Usage: sextant property update PROPERTY_ID [--name NAME] [--time-zone TZ] [--allowed-origins O,…]
      [--currency EUR] [--currency-rates USD=0.92,GBP=1.17] [--key-events purchase,sign_up]
      [--custom-event-dimensions P,…] [--custom-user-dimensions U,…] [--custom-event-metrics P,…] [--json]

Changes the settings given and only those (an empty list clears one).
`,
	"property delete":     "Usage: sextant property delete PROPERTY_ID\n\nDeletes a property and revokes its keys.\n",
	"property key list":   "Usage: sextant property key list PROPERTY_ID [--all] [--json]\n",
	"property key create": "Usage: sextant property key create PROPERTY_ID --scope write|read|measurement [--json]\n\nCreates a key and prints its secret, shown only this once.\n",
	"property key rotate": "Usage: sextant property key rotate PROPERTY_ID KEY_ID [--grace 24h] [--json]\n\nReplaces a key with a new one; the old one stays accepted for --grace.\n",
	"property key revoke": "Usage: sextant property key revoke PROPERTY_ID KEY_ID\n",
	"kafka init": `Usage: sextant kafka init [--kafka-brokers …] [--kafka-topic …] [--kafka-partitions N] [flags]

Creates the event topic and its dead-letter topic (distributed mode), or
checks that existing ones match.
`,
	"migrate": `Usage: sextant migrate [--cql-hosts …] [--cql-keyspace …] [flags]

Creates the CQL keyspace and its tables (distributed mode), or brings them
up to date.
`,
	"admin-key create": `Usage: sextant admin-key create [--data-dir DIR | --cql-hosts …]

Writes a new admin key to the store and prints it (bootstrapping: projection
and property management take it as --admin-key).
`,
	"projection list":     "Usage: sextant projection list [--json]\n\nLists the projections' versions (an admin or a read key).\n",
	"projection status":   "Usage: sextant projection status NAME [VERSION] [--json]\n\nA projection's versions, or one version, with each partition's progress.\n",
	"projection replay":   "Usage: sextant projection replay NAME --logic VERSION [--from earliest|RFC3339] [--watch]\n\nBuilds a new version of a projection from the event log. --watch returns\nonce the version has reached the end the log had when the replay started:\nits reports then hold every event sent before.\n",
	"projection activate": "Usage: sextant projection activate NAME VERSION\n\nMakes a caught-up version the one reports read.\n",
	"projection rollback": "Usage: sextant projection rollback NAME\n\nMakes the previously active version active again.\n",
	"projection delete":   "Usage: sextant projection delete NAME VERSION\n\nDeletes a version that is not active.\n",
	"context set":         contextSynopses["context set"],
	"context use":         contextSynopses["context use"],
	"context list":        contextSynopses["context list"],
	"context show":        contextSynopses["context show"],
	"context delete":      contextSynopses["context delete"],
	"loadgen":             loadgenUsage,
	"geoip fetch":         geoipFetchUsage,
}

// commandHelp is the usage of the command whose flags fs holds: its
// synopsis, then its flags.
func commandHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	s, ok := synopses[fs.Name()]
	if !ok {
		s = "Usage: sextant " + fs.Name() + " [flags]\n"
	}
	b.WriteString(strings.TrimRight(s, "\n") + "\n")
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return b.String()
	}
	b.WriteString("\nFlags:\n")
	fs.VisitAll(func(fl *flag.Flag) { writeFlag(&b, fl) })
	return b.String()
}

// writeFlag writes one flag's usage: --name TYPE, then its help and its
// default unless that is the zero value.
func writeFlag(b *strings.Builder, fl *flag.Flag) {
	fmt.Fprintf(b, "  --%s", fl.Name)
	if t := flagType(fl); t != "" {
		b.WriteString(" " + t)
	}
	b.WriteString("\n        " + strings.ReplaceAll(fl.Usage, "\n", "\n        "))
	switch fl.DefValue {
	case "", "0", "false", "0s", "[]":
	default:
		fmt.Fprintf(b, " (default %s)", fl.DefValue)
	}
	b.WriteString("\n")
}

// flagType names the kind of value a flag takes; "" for a switch.
func flagType(fl *flag.Flag) string {
	if t, ok := fl.Value.(interface{ Type() string }); ok {
		return t.Type()
	}
	if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return ""
	}
	name, _ := flag.UnquoteUsage(&flag.Flag{Value: fl.Value})
	if name == "value" { // flags.ListVar's
		return "list"
	}
	return name
}

// autoDuration is a duration whose negative value means "chosen at
// start", given and shown as auto.
type autoDuration time.Duration

func (d *autoDuration) String() string {
	if v := ptrOr(d); v >= 0 {
		return time.Duration(v).String()
	}
	return "auto"
}

func (d *autoDuration) Set(s string) error {
	if s == "auto" || s == "" {
		*d = -1
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = autoDuration(max(v, -1)) // negative: auto, as -1 always meant
	return nil
}

func (*autoDuration) Type() string { return "duration|auto" }

func ptrOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// byteSize is a number of bytes, given and shown as 64MiB, 512KiB, 1GiB
// or a plain number of bytes (K, M and G are binary too).
type byteSize int

var sizeUnits = []struct {
	suffixes []string
	shift    uint
}{
	{[]string{"gib", "gb", "g"}, 30},
	{[]string{"mib", "mb", "m"}, 20},
	{[]string{"kib", "kb", "k"}, 10},
	{[]string{"b", ""}, 0},
}

func (s *byteSize) String() string {
	n := int(ptrOr(s))
	for _, u := range sizeUnits[:3] {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.Itoa(n>>u.shift) + strings.ToUpper(u.suffixes[0][:1]) + "iB"
		}
	}
	return strconv.Itoa(n)
}

func (s *byteSize) Set(v string) error {
	lower := strings.ToLower(strings.TrimSpace(v))
	for _, u := range sizeUnits {
		for _, suf := range u.suffixes {
			num, ok := strings.CutSuffix(lower, suf)
			if !ok {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(num))
			if err != nil {
				continue
			}
			if n < 0 || n > (1<<62)>>u.shift {
				return fmt.Errorf("%q is out of range", v)
			}
			*s = byteSize(n << u.shift)
			return nil
		}
	}
	return fmt.Errorf("%q is not a size (e.g. 64MiB, 512KiB or a number of bytes)", v)
}

func (*byteSize) Type() string { return "size" }
