package eventlog

import (
	"context"
	"fmt"
)

// Probe reports whether log answers, for readiness: the adapter's own
// Probe when it has one (the embedded log: it takes appends; Kafka: a
// broker names a live leader for every partition), else a listing of its
// partitions.
func Probe(ctx context.Context, log Reader) error {
	if p, ok := log.(interface{ Probe(context.Context) error }); ok {
		return p.Probe(ctx)
	}
	_, err := log.Partitions(ctx)
	return err
}

// Empty reports whether no record was ever appended to log.
func Empty(ctx context.Context, log Reader) (bool, error) {
	parts, err := log.Partitions(ctx)
	if err != nil {
		return false, fmt.Errorf("event log partitions: %w", err)
	}
	for _, p := range parts {
		end, err := log.EndOffset(ctx, p)
		if err != nil {
			return false, fmt.Errorf("event log end offset: %w", err)
		}
		if end > 0 {
			return false, nil
		}
	}
	return true, nil
}
