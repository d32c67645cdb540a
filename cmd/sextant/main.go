// Command sextant runs Sextant: `sextant serve` runs the collect, projection
// and insights services (all of them in one process by default), and the
// other subcommands administer properties.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Sextant: an analytics backend (CQRS + event sourcing).

Usage:
  sextant serve [flags]                      run the services (see sextant serve -h)
  sextant property create|list|get|update|delete …
                                             manage properties on a running server (see sextant property)
  sextant property key list|create|rotate|revoke …
                                             manage a property's API keys on a running server
  sextant kafka init [flags]                 create the event topic (distributed mode)
  sextant migrate [flags]                    create the CQL keyspace and tables (distributed mode)
  sextant admin-key create                   an admin key, written to the store (bootstrapping)
  sextant geoip fetch [flags]                fetch the city database ahead of time (sextant serve fetches it on first start)
  sextant projection list|status|replay|activate|rollback|delete …
                                             manage projection versions on a running server
  sextant loadgen [flags]                    synthetic traffic for benchmarks (see sextant loadgen -h)
  sextant version

Every flag has an environment fallback: --data-dir is SEXTANT_DATA_DIR, and so on.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "property":
		err = propertyCmd(ctx, args[1:], stdout, stderr)
	case "kafka":
		err = kafkaCmd(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrateCmd(ctx, args[1:], stdout, stderr)
	case "admin-key":
		err = adminKeyCmd(ctx, args[1:], stdout, stderr)
	case "projection":
		err = projectionCmd(ctx, args[1:], stdout, stderr)
	case "geoip":
		err = geoipCmd(ctx, args[1:], stdout, stderr)
	case "loadgen":
		err = loadgenCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sextant: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err != errUsage {
			fmt.Fprintln(stderr, "sextant:", err)
		}
		return 1
	}
	return 0
}
