package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"

	"github.com/sextant-analytics/sextant/pkg/property"
)

func propertyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: sextant property create --name NAME [--time-zone TZ] [--json] [--count N] | sextant property list [--json]\n")
		return errUsage
	}
	f := newFlags("property "+args[0], stderr)
	var e engines
	e.flags(f)
	asJSON := f.Bool("json", false, "print JSON")
	var name, tz *string
	var count *int
	if args[0] == "create" {
		name = f.String("name", "", "the property's name (required)")
		tz = f.String("time-zone", "UTC", "IANA time zone reports use")
		count = f.Int("count", 1, "create this many properties, named NAME-1 … NAME-N, and print their keys as JSON lines (needs --json when above 1)")
	}
	var origins []string
	if args[0] == "create" {
		f.ListVar(&origins, "allowed-origins", "browser origins allowed to send hits (scheme://host,…); any when empty")
	}
	if args[0] != "create" && args[0] != "list" {
		fmt.Fprintf(stderr, "unknown property command %q\n", args[0])
		return errUsage
	}
	if err := f.parse(args[1:]); err != nil {
		return err
	}
	st, err := e.openViews(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	reg := property.NewRegistry(st)
	if args[0] == "list" {
		list, err := reg.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		for _, p := range list {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", p.ID, p.TimeZone, p.Name)
		}
		return nil
	}
	if *name == "" {
		fmt.Fprintln(stderr, "--name is required")
		return errUsage
	}
	if *count < 1 || *count > maxCreateCount || (*count > 1 && !*asJSON) {
		fmt.Fprintf(stderr, "--count must be 1..%d, and above 1 needs --json\n", maxCreateCount)
		return errUsage
	}
	if *count > 1 {
		return createProperties(ctx, reg, *name, *tz, origins, *count, stdout)
	}
	p, keys, err := reg.Create(ctx, *name, *tz)
	if err != nil {
		return err
	}
	if len(origins) > 0 {
		if p, err = reg.SetAllowedOrigins(ctx, p.ID, origins); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(keys)
	}
	fmt.Fprintf(stdout, "Created property %q (%s, %s). Its keys are shown only this once:\nexport SEXTANT_PROPERTY_ID=%s\nexport SEXTANT_WRITE_KEY=%s\nexport SEXTANT_READ_KEY=%s\n",
		p.Name, p.ID, p.TimeZone, keys.PropertyID, keys.WriteKey, keys.ReadKey)
	return nil
}

// maxCreateCount bounds `property create --count`.
const maxCreateCount = 1_000_000

// createWorkers is how many properties `property create --count` creates
// at once: each is a few store writes (synced in Pebble, a round trip in
// CQL), which concurrent writers share.
const createWorkers = 16

// createProperties creates count properties named name-1 … name-count
// and prints their keys as JSON lines, in the order of their names. After
// an error it starts no more, and still prints the keys of every property
// it created, so that none is left without its keys shown.
func createProperties(ctx context.Context, reg *property.Registry, name, tz string, origins []string, count int, stdout io.Writer) error {
	type result struct {
		keys property.Keys
		err  error
	}
	results := make([]result, count)
	done := make([]chan struct{}, count)
	for i := range done {
		done[i] = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(createWorkers, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &results[i]
				if err := ctx.Err(); err != nil {
					r.err = err
				} else {
					var p property.Property
					p, r.keys, r.err = reg.Create(ctx, fmt.Sprintf("%s-%d", name, i+1), tz)
					if r.err == nil && len(origins) > 0 {
						_, r.err = reg.SetAllowedOrigins(ctx, p.ID, slices.Clone(origins))
					}
				}
				close(done[i])
			}
		}()
	}
	go func() {
		defer close(next)
		for i := range count {
			select {
			case next <- i:
			case <-ctx.Done():
				for j := i; j < count; j++ {
					results[j].err = ctx.Err()
					close(done[j])
				}
				return
			}
		}
	}()
	defer wg.Wait()
	enc := json.NewEncoder(stdout)
	var firstErr error
	created := 0
	for i := range count {
		<-done[i]
		if err := results[i].err; err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("property %s-%d: %w", name, i+1, err)
				cancel() // the properties being created still print
			}
			continue
		}
		created++
		if err := enc.Encode(results[i].keys); err != nil && firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	if firstErr != nil {
		return fmt.Errorf("%w (%d of %d created, their keys printed)", firstErr, created, count)
	}
	return nil
}
