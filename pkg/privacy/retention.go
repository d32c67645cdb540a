package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sextant-analytics/sextant/pkg/metadata"
	"github.com/sextant-analytics/sextant/pkg/property"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// Properties lists the properties (property.Registry).
type Properties interface {
	List(ctx context.Context, pageSize int, token string) ([]property.Property, string, error)
}

// MetaKV is the part of the metadata store (metadata.KV, whose semantics
// it has) that retention keeps its progress in.
type MetaKV interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
}

// Retention enforces the properties' data retention: the key of every month
// past a property's retention is destroyed, as a request in the ledger (the
// projection service's rebuilder then rebuilds the read models without
// that month's events).
type Retention struct {
	props  Properties
	meta   MetaKV
	ledger *Ledger
	log    *slog.Logger
	now    func() time.Time
}

// NewRetention returns the enforcer.
func NewRetention(props Properties, meta MetaKV, ledger *Ledger, log *slog.Logger) *Retention {
	if log == nil {
		log = slog.Default()
	}
	return &Retention{props: props, meta: meta, ledger: ledger, log: log, now: time.Now}
}

// Expired is the last month past retention at now: the months up to it
// (inclusive) are deleted. retention whole months follow it, then the
// current one.
func Expired(now time.Time, retention int) time.Time {
	y, m, _ := now.UTC().Date()
	return time.Date(y, m-time.Month(retention)-1, 1, 0, 0, 0, 0, time.UTC)
}

func progressKey(id string) []byte { return []byte("privacy/retention/" + id) }

// Run enforces retention every interval until ctx ends.
func (r *Retention) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := r.Step(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("enforcing data retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step destroys the keys of the months that went past retention since the
// last step.
func (r *Retention) Step(ctx context.Context) error {
	now := r.now()
	var errs []error
	token := ""
	for {
		ps, next, err := r.props.List(ctx, 500, token)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.DataRetentionMonths > 0 {
				if err := r.expire(ctx, p, Expired(now, p.DataRetentionMonths)); err != nil {
					errs = append(errs, fmt.Errorf("property %s: %w", p.ID, err))
				}
			}
		}
		if next == "" {
			return errors.Join(errs...)
		}
		token = next
	}
}

// expire destroys the keys of p's months from the one after the last it
// expired (or its creation's) to last.
func (r *Retention) expire(ctx context.Context, p property.Property, last time.Time) error {
	from := time.Date(p.CreatedAt.UTC().Year(), p.CreatedAt.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	b, err := r.meta.Get(ctx, progressKey(p.ID))
	switch {
	case err == nil:
		done, perr := time.Parse("2006-01", string(b))
		if perr != nil {
			return fmt.Errorf("retention progress %q: %w", b, perr)
		}
		from = done.AddDate(0, 1, 0)
	case !errors.Is(err, metadata.ErrNotFound):
		return err
	}
	for m := from; !m.After(last); m = m.AddDate(0, 1, 0) {
		req, err := r.ledger.forget(ctx, Request{Property: p.ID, Kind: ExpiredMonth, Month: seal.MonthOf(m), Time: r.now().UTC()}, seal.Month(m))
		if err != nil {
			return err
		}
		if req.KeyFound {
			r.log.Info("deleted a month of events past the property's data retention", "property", p.ID, "month", req.Month, "retention_months", p.DataRetentionMonths)
		}
		if err := r.meta.Put(ctx, progressKey(p.ID), []byte(seal.MonthOf(m))); err != nil {
			return err
		}
	}
	return nil
}
