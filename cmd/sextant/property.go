package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/sextant-analytics/sextant/gen/sextant/admin/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/admin/v1/adminv1connect"
	"github.com/sextant-analytics/sextant/pkg/property"
)

const propertyUsage = `Usage: sextant property COMMAND [ARGUMENTS] [flags]

  sextant property create --name NAME [--time-zone TZ] [--allowed-origins O,…] [--json]
  sextant property list [--json]
  sextant property get PROPERTY_ID [--json]
  sextant property update PROPERTY_ID [--name NAME] [--time-zone TZ] [--allowed-origins O,…]
      [--currency EUR] [--currency-rates USD=0.92,GBP=1.17] [--key-events purchase,sign_up]
      [--custom-event-dimensions P,…] [--custom-user-dimensions U,…] [--custom-event-metrics P,…]
      [--data-retention-months 14] [--json]
  sextant property delete PROPERTY_ID
  sextant property delete-user PROPERTY_ID --client-id ID | --user-id ID | --app-instance-id ID [--json]
` + propertyKeyCommands + `
They call a running server (--server, env SEXTANT_SERVER) with an admin key
(--admin-key, env SEXTANT_ADMIN_KEY), else those of the current context
(sextant context), or of the one --context names. To bootstrap, before any server runs
(or with the embedded store's server stopped), create and list take
--offline and write the store itself (--data-dir, or --cql-hosts …);
create --offline --count N --json makes N properties at once.
A command's flags: sextant property COMMAND --help.
`

const propertyKeyCommands = `  sextant property key list PROPERTY_ID [--all] [--json]
  sextant property key create PROPERTY_ID --scope write|read|measurement [--json]
  sextant property key rotate PROPERTY_ID KEY_ID [--grace 24h] [--json]
  sextant property key revoke PROPERTY_ID KEY_ID
`

const propertyKeyUsage = `Usage: sextant property key COMMAND PROPERTY_ID [KEY_ID] [flags]

` + propertyKeyCommands + `
They call a running server (--server, env SEXTANT_SERVER) with an admin key
(--admin-key, env SEXTANT_ADMIN_KEY), else those of the current context
(sextant context). A command's flags: sextant property key COMMAND --help.
`

// reportingFlags are update's list flags of reporting settings, each
// setting one field (an empty list clears it).
var reportingFlags = []struct {
	flag, path, help string
	apply            func(p *adminv1.Property, v []string) error
}{
	{"currency-rates", "currency_rates", "rates into --currency, CODE=RATE,… (one unit of CODE is worth RATE)", func(p *adminv1.Property, v []string) error {
		p.CurrencyRates = map[string]float64{}
		for _, kv := range v {
			c, r, ok := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(r, 64)
			if !ok || err != nil {
				return fmt.Errorf("--currency-rates: %q is not CODE=RATE", kv)
			}
			p.CurrencyRates[c] = x
		}
		return nil
	}},
	{"key-events", "key_events", "event names counted as key events from now on", func(p *adminv1.Property, v []string) error { p.KeyEvents = v; return nil }},
	{"custom-event-dimensions", "custom_event_dimensions", "event parameters kept as custom dimensions (customEvent:NAME)", func(p *adminv1.Property, v []string) error { p.CustomEventDimensions = v; return nil }},
	{"custom-user-dimensions", "custom_user_dimensions", "user properties kept as custom dimensions (customUser:NAME)", func(p *adminv1.Property, v []string) error { p.CustomUserDimensions = v; return nil }},
	{"custom-event-metrics", "custom_event_metrics", "numeric event parameters kept as custom metrics (customEvent:NAME)", func(p *adminv1.Property, v []string) error { p.CustomEventMetrics = v; return nil }},
}

func propertyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, propertyUsage)
		return errUsage
	}
	if isHelp(args[0]) {
		return groupHelp(propertyUsage)
	}
	cmd := args[0]
	args = args[1:]
	if cmd == "key" {
		if len(args) == 0 {
			fmt.Fprint(stderr, propertyKeyUsage)
			return errUsage
		}
		if isHelp(args[0]) {
			return groupHelp(propertyKeyUsage)
		}
		cmd, args = "key "+args[0], args[1:]
	}
	known := []string{"create", "list", "get", "update", "delete", "delete-user", "key list", "key create", "key rotate", "key revoke"}
	if !slices.Contains(known, cmd) {
		fmt.Fprintf(stderr, "unknown property command %q\n%s", cmd, propertyUsage)
		return errUsage
	}
	f := newFlags("property "+cmd, stderr)
	server, adminKey := serverFlags(f, "an admin key")
	asJSON := f.Bool("json", false, "print JSON")
	var (
		name, tz, scope = new(string), new(string), new(string)
		count           = new(int)
		offline, all    = new(bool), new(bool)
		grace           = new(time.Duration)
		origins         []string
		reporting       = map[string]*[]string{}
		currency        = new(string)
		retention       = new(int)
		userID          = map[string]*string{}
		e               engines
	)
	*count = 1
	switch cmd {
	case "create", "update":
		name = f.String("name", "", "the property's display name")
		tz = f.String("time-zone", "", "IANA time zone reports use (create: UTC when empty)")
		f.ListVar(&origins, "allowed-origins", "browser origins allowed to send hits (scheme://host,…); any when empty")
		if cmd == "update" {
			currency = f.String("currency", "", "the ISO 4217 code reports show revenue in (USD when empty)")
			retention = f.Int("data-retention-months", 0, "months events are kept (GA4 offers 2, 14, 26, 38, 50); 0 keeps them")
			for _, r := range reportingFlags {
				reporting[r.flag] = new([]string)
				f.ListVar(reporting[r.flag], r.flag, r.help)
			}
		}
	case "delete-user":
		userID["client-id"] = f.String("client-id", "", "the web client id to delete (gtag's client_id)")
		userID["user-id"] = f.String("user-id", "", "the user id to delete")
		userID["app-instance-id"] = f.String("app-instance-id", "", "the app instance id to delete")
	case "key list":
		all = f.Bool("all", false, "include revoked and expired keys")
	case "key create":
		scope = f.String("scope", "", "write, read or measurement (a Measurement Protocol API secret)")
	case "key rotate":
		grace = f.Duration("grace", 0, "how long the old key stays accepted (at most 720h)")
	}
	if cmd == "create" || cmd == "list" {
		offline = f.Bool("offline", false, "write the store directly instead of calling a server (bootstrapping)")
		e.storeFlags(f)
	}
	if cmd == "create" {
		count = f.Int("count", 1, "with --offline: create this many properties, named NAME-1 … NAME-N, and print their keys as JSON lines (needs --json when above 1)")
	}
	pos, err := parseInterleaved(f, args)
	if err != nil {
		return err
	}
	want := map[string]int{"create": 0, "list": 0, "get": 1, "update": 1, "delete": 1, "delete-user": 1, "key list": 1, "key create": 1, "key rotate": 2, "key revoke": 2}[cmd]
	if len(pos) != want {
		fmt.Fprint(stderr, propertyUsage)
		return errUsage
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	// A flag set by its environment variable counts as given.
	envFlags := []string{"allowed-origins", "currency"}
	for _, r := range reportingFlags {
		envFlags = append(envFlags, r.flag)
	}
	for _, n := range envFlags {
		if os.Getenv(envName(n)) != "" {
			set[n] = true
		}
	}
	originsSet := set["allowed-origins"]
	if *offline {
		return propertyOffline(ctx, cmd, &e, *name, *tz, origins, *count, *asJSON, stdout, stderr)
	}
	if *count != 1 {
		return errors.New("--count needs --offline")
	}
	if *adminKey == "" {
		return errors.New("--admin-key is required (or SEXTANT_ADMIN_KEY, or a context's: sextant context set NAME --admin-key …); to bootstrap without a server use --offline")
	}
	client := adminv1connect.NewAdminServiceClient(http.DefaultClient, strings.TrimRight(*server, "/"))
	call := func(h http.Header) { h.Set("Authorization", "Bearer "+*adminKey) }
	out := func(m proto.Message, text string) error { return printAnswer(stdout, *asJSON, m, text) }
	switch cmd {
	case "create":
		if *name == "" {
			return errors.New("--name is required")
		}
		req := connect.NewRequest(&adminv1.CreatePropertyRequest{Property: &adminv1.Property{DisplayName: *name, TimeZone: *tz, AllowedOrigins: origins}})
		call(req.Header())
		resp, err := client.CreateProperty(ctx, req)
		if err != nil {
			return err
		}
		p := resp.Msg.Property
		return out(resp.Msg, fmt.Sprintf("Created property %q (%s, %s). Its keys are shown only this once:\nexport SEXTANT_PROPERTY_ID=%s\nexport SEXTANT_WRITE_KEY=%s\nexport SEXTANT_READ_KEY=%s\n",
			p.DisplayName, p.PropertyId, p.TimeZone, p.PropertyId, resp.Msg.WriteKey.Secret, resp.Msg.ReadKey.Secret))
	case "list":
		all := &adminv1.ListPropertiesResponse{}
		token := ""
		for {
			req := connect.NewRequest(&adminv1.ListPropertiesRequest{PageSize: 1000, PageToken: token})
			call(req.Header())
			resp, err := client.ListProperties(ctx, req)
			if err != nil {
				return err
			}
			all.Properties = append(all.Properties, resp.Msg.Properties...)
			if token = resp.Msg.NextPageToken; token == "" {
				break
			}
		}
		var b strings.Builder
		for _, p := range all.Properties {
			b.WriteString(describeProperty(p))
		}
		return out(all, b.String())
	case "get":
		req := connect.NewRequest(&adminv1.GetPropertyRequest{PropertyId: pos[0]})
		call(req.Header())
		resp, err := client.GetProperty(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, describeProperty(resp.Msg.Property))
	case "update":
		p := &adminv1.Property{PropertyId: pos[0], DisplayName: *name, TimeZone: *tz, AllowedOrigins: origins}
		mask := &fieldmaskpb.FieldMask{}
		if *name != "" {
			mask.Paths = append(mask.Paths, "display_name")
		}
		if *tz != "" {
			mask.Paths = append(mask.Paths, "time_zone")
		}
		if originsSet {
			mask.Paths = append(mask.Paths, "allowed_origins")
		}
		if set["currency"] {
			p.CurrencyCode = *currency
			mask.Paths = append(mask.Paths, "currency_code")
		}
		if set["data-retention-months"] {
			p.DataRetentionMonths = int32(*retention)
			mask.Paths = append(mask.Paths, "data_retention_months")
		}
		for _, r := range reportingFlags {
			if !set[r.flag] {
				continue
			}
			if err := r.apply(p, *reporting[r.flag]); err != nil {
				return err
			}
			mask.Paths = append(mask.Paths, r.path)
		}
		if len(mask.Paths) == 0 {
			return errors.New("nothing to update: give --name, --time-zone, --allowed-origins (empty to allow any origin), --currency, --currency-rates, --key-events, --custom-… or --data-retention-months")
		}
		req := connect.NewRequest(&adminv1.UpdatePropertyRequest{Property: p, UpdateMask: mask})
		call(req.Header())
		resp, err := client.UpdateProperty(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, "updated: "+describeProperty(resp.Msg.Property))
	case "delete":
		req := connect.NewRequest(&adminv1.DeletePropertyRequest{PropertyId: pos[0]})
		call(req.Header())
		resp, err := client.DeleteProperty(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, fmt.Sprintf("deleted property %s and revoked its keys\n", pos[0]))
	case "delete-user":
		req := connect.NewRequest(&adminv1.DeleteUserRequest{PropertyId: pos[0]})
		given := 0
		for _, n := range []string{"client-id", "user-id", "app-instance-id"} {
			if set[n] {
				given++
			}
		}
		switch {
		case given != 1:
			return errors.New("give exactly one of --client-id, --user-id and --app-instance-id")
		case set["client-id"]:
			req.Msg.User = &adminv1.DeleteUserRequest_ClientId{ClientId: *userID["client-id"]}
		case set["user-id"]:
			req.Msg.User = &adminv1.DeleteUserRequest_UserId{UserId: *userID["user-id"]}
		default:
			req.Msg.User = &adminv1.DeleteUserRequest_AppInstanceId{AppInstanceId: *userID["app-instance-id"]}
		}
		call(req.Header())
		resp, err := client.DeleteUser(ctx, req)
		if err != nil {
			return err
		}
		msg := "deleted: the user's events no longer open; reports stop counting them once the read models are rebuilt (--deletion-rebuild-delay, then one replay)\n"
		if !resp.Msg.EventsFound {
			msg = "nothing to delete: the property has no events of this user\n"
		}
		return out(resp.Msg, msg)
	case "key list":
		req := connect.NewRequest(&adminv1.ListKeysRequest{PropertyId: pos[0], ShowRevoked: *all})
		call(req.Header())
		resp, err := client.ListKeys(ctx, req)
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, k := range resp.Msg.Keys {
			b.WriteString(describeKey(k))
		}
		return out(resp.Msg, b.String())
	case "key create":
		sc := map[string]adminv1.KeyScope{"write": adminv1.KeyScope_KEY_SCOPE_WRITE, "read": adminv1.KeyScope_KEY_SCOPE_READ,
			"measurement": adminv1.KeyScope_KEY_SCOPE_MEASUREMENT}[*scope]
		if sc == adminv1.KeyScope_KEY_SCOPE_UNSPECIFIED {
			return errors.New("--scope must be write, read or measurement (a Measurement Protocol API secret)")
		}
		req := connect.NewRequest(&adminv1.CreateKeyRequest{PropertyId: pos[0], Scope: sc})
		call(req.Header())
		resp, err := client.CreateKey(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, describeKey(resp.Msg.Key)+"The secret is shown only this once:\n"+resp.Msg.Key.Secret+"\n")
	case "key rotate":
		req := connect.NewRequest(&adminv1.RotateKeyRequest{PropertyId: pos[0], KeyId: pos[1]})
		if *grace > 0 {
			req.Msg.GracePeriod = durationpb.New(*grace)
		}
		call(req.Header())
		resp, err := client.RotateKey(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, "old: "+describeKey(resp.Msg.OldKey)+"new: "+describeKey(resp.Msg.Key)+"The new secret is shown only this once:\n"+resp.Msg.Key.Secret+"\n")
	case "key revoke":
		req := connect.NewRequest(&adminv1.RevokeKeyRequest{PropertyId: pos[0], KeyId: pos[1]})
		call(req.Header())
		resp, err := client.RevokeKey(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, "revoked: "+describeKey(resp.Msg.Key))
	}
	return errUsage
}

func describeProperty(p *adminv1.Property) string {
	s := fmt.Sprintf("%s\t%s\t%s", p.PropertyId, p.TimeZone, p.DisplayName)
	if len(p.AllowedOrigins) > 0 {
		s += "\torigins " + strings.Join(p.AllowedOrigins, ",")
	}
	if p.CurrencyCode != "" {
		s += "\tcurrency " + p.CurrencyCode
	}
	if len(p.KeyEvents) > 0 {
		s += "\tkey events " + strings.Join(p.KeyEvents, ",")
	}
	if n := len(p.CustomEventDimensions) + len(p.CustomUserDimensions) + len(p.CustomEventMetrics); n > 0 {
		s += fmt.Sprintf("\t%d custom definitions", n)
	}
	// The measurement id last: scripts take the line's last field.
	if p.MeasurementId != "" {
		s += "\tmeasurement id " + p.MeasurementId
	}
	return s + "\n"
}

func describeKey(k *adminv1.Key) string {
	scope := strings.ToLower(strings.TrimPrefix(k.Scope.String(), "KEY_SCOPE_"))
	state := strings.ToLower(strings.TrimPrefix(k.State.String(), "KEY_STATE_"))
	s := fmt.Sprintf("%s\t%s\t%s\t%s\tcreated %s", k.KeyId, scope, state, k.Hint, k.CreateTime.AsTime().Format(time.RFC3339))
	if k.ExpireTime != nil {
		s += "\texpires " + k.ExpireTime.AsTime().Format(time.RFC3339)
	}
	return s + "\n"
}

// propertyOffline creates or lists properties in the store itself.
func propertyOffline(ctx context.Context, cmd string, e *engines, name, tz string, origins []string, count int, asJSON bool, stdout, stderr io.Writer) error {
	st, err := e.openViews(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	reg := property.NewRegistry(st, property.Options{})
	if _, err := reg.Upgrade(ctx); err != nil {
		return err
	}
	if cmd == "list" {
		var list []property.Property
		token := ""
		for {
			page, next, err := reg.List(ctx, 1000, token)
			if err != nil {
				return err
			}
			list = append(list, page...)
			if token = next; token == "" {
				break
			}
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		for _, p := range list {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", p.ID, p.TimeZone, p.Name)
		}
		return nil
	}
	if name == "" {
		fmt.Fprintln(stderr, "--name is required")
		return errUsage
	}
	if count < 1 || count > maxCreateCount || (count > 1 && !asJSON) {
		fmt.Fprintf(stderr, "--count must be 1..%d, and above 1 needs --json\n", maxCreateCount)
		return errUsage
	}
	if count > 1 {
		return createProperties(ctx, reg, property.Property{Name: name, TimeZone: tz, AllowedOrigins: origins}, count, stdout)
	}
	p, keys, err := reg.Create(ctx, property.Property{Name: name, TimeZone: tz, AllowedOrigins: origins})
	if err != nil {
		return err
	}
	if asJSON {
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
// CQL), which concurrent writers share (Pebble's group commit: 14k
// properties a second with 128 on the benchmark machine, 6k with 16).
const createWorkers = 128

// createProperties creates count properties named name-1 … name-count
// and prints their keys as JSON lines, in the order of their names. After
// an error it starts no more, and still prints the keys of every property
// it created, so that none is left without its keys shown.
func createProperties(ctx context.Context, reg *property.Registry, tmpl property.Property, count int, stdout io.Writer) error {
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
					p := tmpl
					p.Name = fmt.Sprintf("%s-%d", tmpl.Name, i+1)
					p.AllowedOrigins = slices.Clone(tmpl.AllowedOrigins)
					_, r.keys, r.err = reg.Create(ctx, p)
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
				firstErr = fmt.Errorf("property %s-%d: %w", tmpl.Name, i+1, err)
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
