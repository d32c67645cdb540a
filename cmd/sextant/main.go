// Command sextant runs Sextant: `sextant serve` runs the collect, projection
// and insights services (all of them in one process by default), and the
// other subcommands administer properties.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

const usage = `Usage: sextant COMMAND [ARGUMENTS] [flags]

Sextant: an analytics backend (CQRS + event sourcing).

Commands:
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
  sextant context set|use|list|show|delete …
                                             named servers and their keys, which the commands above use
  sextant loadgen [flags]                    synthetic traffic for benchmarks (see sextant loadgen -h)
  sextant completion bash|zsh|fish           a shell completion script, e.g. source <(sextant completion bash)
  sextant version
  sextant help [COMMAND …]                   a command's usage, as sextant COMMAND … --help

Every command takes -h or --help. Every flag has an environment fallback:
--data-dir is SEXTANT_DATA_DIR, and so on (but sextant context set's); a
value of the environment that does not parse is an error. The commands
that call a server take --server and the keys from the flag, else the
environment, else the current context (see sextant context), else the
default.
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
	err := dispatch(ctx, args, stdout, stderr)
	var h *helpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &h):
		fmt.Fprint(stdout, h.text)
		return 0
	case errors.Is(err, errUnknownCommand):
		return 2
	case !errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "sextant:", err)
	}
	return 1
}

var errUnknownCommand = errors.New("unknown command")

// dispatch runs the command args name; asked for help, a command returns
// a *helpError.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "property":
		return propertyCmd(ctx, args[1:], stdout, stderr)
	case "kafka":
		return kafkaCmd(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, args[1:], stdout, stderr)
	case "admin-key":
		return adminKeyCmd(ctx, args[1:], stdout, stderr)
	case "projection":
		return projectionCmd(ctx, args[1:], stdout, stderr)
	case "geoip":
		return geoipCmd(ctx, args[1:], stdout, stderr)
	case "context":
		return contextCmd(ctx, args[1:], stdout, stderr)
	case "loadgen":
		return loadgenCmd(ctx, args[1:], stdout, stderr)
	case "completion":
		return completionCmd(ctx, args[1:], stdout, stderr)
	case "version":
		if len(args) > 1 && isHelp(args[1]) {
			return groupHelp("Usage: sextant version\n\nPrints the commit sextant was built from.\n")
		}
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "--help":
		if len(args) > 1 && !isHelp(args[1]) {
			// `sextant help property key` is `sextant property key --help`.
			return dispatch(ctx, append(slices.Clone(args[1:]), "--help"), stdout, stderr)
		}
		return groupHelp(usage)
	}
	fmt.Fprintf(stderr, "sextant: unknown command %q\n\n%s", args[0], usage)
	return errUnknownCommand
}
