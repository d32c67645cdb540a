package projection

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/sextant-analytics/sextant/pkg/eventlog"
)

// Starter records a projection's first active version (versions.Registry).
type Starter interface {
	Start(ctx context.Context, name, version string) (bool, error)
}

// StartVersion writes the traffic projection's active version of a store
// that has none yet, at its first start, so that a later default or flag
// never switches what it serves: want when the event log is empty (a new
// store), else v1, which such a store served by default before versions
// were written. want "" is v1. Processes without the log (gateway,
// insights: log nil) leave it to those with it.
func StartVersion(ctx context.Context, want string, log eventlog.Reader, vers Starter, logger *slog.Logger) error {
	if want != "" {
		if _, ok := FindLogic(Logics(), "traffic", want); !ok {
			return fmt.Errorf("no version %s of the traffic projection", want)
		}
	}
	if log == nil {
		return nil
	}
	start := "v1"
	if want != "" {
		empty, err := eventlog.Empty(ctx, log)
		if err != nil {
			return err
		}
		if empty {
			start = want
		}
	}
	started, err := vers.Start(ctx, "traffic", start)
	switch {
	case err != nil:
		return err
	case started && start != want && want != "":
		logger.Warn("the event log holds events: the start version is for new stores; this store keeps serving v1 (replay and activate to change it)", "version", want)
	case started:
		logger.Info("the traffic projection starts with its version", "version", start)
	}
	return nil
}

// SetMemoryLimit gives a process that runs projections a soft Go memory
// limit of 1 GiB unless GOMEMLIMIT sets one, and returns the limit and
// whether it set it: a projection's memory is its state windows and open
// additions (bounded by MaxOpenEntries), and without a limit the heap
// grows to twice what is live between collections.
func SetMemoryLimit() (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), false
	}
	const limit = 1 << 30
	debug.SetMemoryLimit(limit)
	return limit, true
}
