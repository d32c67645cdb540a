package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/sextant-analytics/sextant/pkg/property"
)

func propertyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: sextant property create --name NAME [--time-zone TZ] [--json] | sextant property list [--json]\n")
		return errUsage
	}
	f := newFlags("property "+args[0], stderr)
	var e engines
	e.flags(f)
	asJSON := f.Bool("json", false, "print JSON")
	var name, tz *string
	if args[0] == "create" {
		name = f.String("name", "", "the property's name (required)")
		tz = f.String("time-zone", "UTC", "IANA time zone reports use")
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
