package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/projection/v1/projectionv1connect"
)

const projectionUsage = `Usage: sextant projection COMMAND [ARGUMENTS] [flags]

  sextant projection list [--json]
  sextant projection status NAME [VERSION] [--json]
  sextant projection replay NAME --logic VERSION [--from earliest|RFC3339] [--watch]
      (--watch returns once the version has reached the end the log had
      when the replay started: its reports then hold every event sent before)
  sextant projection activate NAME VERSION
  sextant projection rollback NAME
  sextant projection delete NAME VERSION

They call a running server (--server, env SEXTANT_SERVER) with an admin key
(--admin-key, env SEXTANT_ADMIN_KEY); list and status also take a read key.
A value neither flag nor environment gives comes from the current context
(sextant context), or the one --context names.
A command's flags: sextant projection COMMAND --help.
`

var projectionCommands = []string{"list", "status", "replay", "activate", "rollback", "delete"}

// parseInterleaved parses flags placed before, between or after the
// positional arguments, and returns the positionals; -h, --help or help
// first returns a *helpError.
func parseInterleaved(f flags, args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.parseFlags(args); err != nil {
			return nil, err
		}
		if f.NArg() == 0 {
			return pos, f.finish()
		}
		if len(pos) == 0 && f.Arg(0) == "help" {
			return nil, f.helpError()
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
}

// defaultServer is --server's default: sextant serve's default address.
const defaultServer = "http://127.0.0.1:8080"

// serverFlags are --server and --admin-key, of the commands that call a
// running server (and --context, which flags adds with them).
func serverFlags(f flags, keyHelp string) (server, key *string) {
	server = f.String("server", defaultServer, "the Sextant server (or gateway) to call")
	return server, f.Secret("admin-key", keyHelp)
}

func projectionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, projectionUsage)
		return errUsage
	}
	if isHelp(args[0]) {
		return groupHelp(projectionUsage)
	}
	if !slices.Contains(projectionCommands, args[0]) {
		fmt.Fprintf(stderr, "unknown projection command %q\n%s", args[0], projectionUsage)
		return errUsage
	}
	f := newFlags("projection "+args[0], stderr)
	keyHelp := "an admin key"
	if args[0] == "list" || args[0] == "status" {
		keyHelp = "an admin key or a read key (SEXTANT_READ_KEY, else the context's read key, when no admin key is given)"
	}
	server, key := serverFlags(f, keyHelp)
	asJSON := f.Bool("json", false, "print JSON")
	logic, from, watch := new(string), new(string), new(bool)
	if args[0] == "replay" {
		logic = f.String("logic", "", "the logic version to build, e.g. v2")
		from = f.String("from", "earliest", "earliest, or an RFC 3339 time")
		watch = f.Bool("watch", false, "follow progress until the version has reached the end the log had when the replay started")
	}
	pos, err := parseInterleaved(f, args[1:])
	if err != nil {
		return err
	}
	if *key == "" && (args[0] == "list" || args[0] == "status") {
		// A read key will do: the environment's, else the context's.
		*key = strings.TrimSpace(os.Getenv("SEXTANT_READ_KEY"))
		if *key == "" {
			*key = f.fromContext("read-key")
		}
	}
	if *key == "" {
		return errors.New("--admin-key is required (or SEXTANT_ADMIN_KEY, or a context's: sextant context set NAME --admin-key …)")
	}
	client := projectionv1connect.NewProjectionServiceClient(http.DefaultClient, strings.TrimRight(*server, "/"))
	auth := func(h http.Header) { h.Set("Authorization", "Bearer "+*key) }
	need := func(n int) error {
		if len(pos) != n {
			fmt.Fprint(stderr, projectionUsage)
			return errUsage
		}
		return nil
	}
	out := func(m proto.Message, text string) error { return printAnswer(stdout, *asJSON, m, text) }
	switch args[0] {
	case "list", "status":
		if args[0] == "list" && len(pos) != 0 || args[0] == "status" && (len(pos) < 1 || len(pos) > 2) {
			fmt.Fprint(stderr, projectionUsage)
			return errUsage
		}
		if len(pos) == 2 {
			req := connect.NewRequest(&projectionv1.GetReplayRequest{Name: pos[0], Version: pos[1]})
			auth(req.Header())
			resp, err := client.GetReplay(ctx, req)
			if err != nil {
				return err
			}
			return out(resp.Msg, describeProjection(resp.Msg.Projection, true))
		}
		req := connect.NewRequest(&projectionv1.ListProjectionsRequest{})
		if len(pos) == 1 {
			req.Msg.Name = pos[0]
		}
		auth(req.Header())
		resp, err := client.ListProjections(ctx, req)
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, p := range resp.Msg.Projections {
			b.WriteString(describeProjection(p, args[0] == "status"))
		}
		return out(resp.Msg, b.String())
	case "replay":
		if err := need(1); err != nil {
			return err
		}
		if *logic == "" {
			return errors.New("--logic VERSION is required, e.g. --logic v2")
		}
		rf := &projectionv1.ReplayFrom{}
		if *from == "" || *from == "earliest" {
			rf.Start = &projectionv1.ReplayFrom_Earliest{Earliest: true}
		} else {
			t, err := time.Parse(time.RFC3339, *from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			rf.Start = &projectionv1.ReplayFrom_Time{Time: timestamppb.New(t)}
		}
		req := connect.NewRequest(&projectionv1.StartReplayRequest{Name: pos[0], Version: *logic, From: rf})
		auth(req.Header())
		resp, err := client.StartReplay(ctx, req)
		if err != nil {
			return err
		}
		if err := out(resp.Msg, "replay started: "+describeProjection(resp.Msg.Projection, false)); err != nil {
			return err
		}
		if !*watch {
			return nil
		}
		// The log's end offsets as the replay started: --watch returns
		// once the version has projected everything before them, so that
		// its reports hold every event sent before the replay.
		ends := map[int32]int64{}
		for _, pp := range resp.Msg.Projection.GetPartitions() {
			ends[pp.Partition] = pp.EndOffset
		}
		if err := watchReplay(ctx, client, auth, pos[0], *logic, ends, out, time.Second); err != nil {
			return err
		}
		if *asJSON {
			return nil
		}
		_, err = fmt.Fprintf(stdout, "done: %s/%s has reached the end the log had when the replay started (%s)\n", pos[0], *logic, formatOffsets(ends))
		return err
	case "activate":
		if err := need(2); err != nil {
			return err
		}
		req := connect.NewRequest(&projectionv1.ActivateRequest{Name: pos[0], Version: pos[1]})
		auth(req.Header())
		resp, err := client.Activate(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, "activated: "+describeProjection(resp.Msg.Projection, false))
	case "rollback":
		if err := need(1); err != nil {
			return err
		}
		req := connect.NewRequest(&projectionv1.RollbackRequest{Name: pos[0]})
		auth(req.Header())
		resp, err := client.Rollback(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, "rolled back to: "+describeProjection(resp.Msg.Projection, false))
	case "delete":
		if err := need(2); err != nil {
			return err
		}
		req := connect.NewRequest(&projectionv1.DeleteVersionRequest{Name: pos[0], Version: pos[1]})
		auth(req.Header())
		resp, err := client.DeleteVersion(ctx, req)
		if err != nil {
			return err
		}
		return out(resp.Msg, fmt.Sprintf("deleted %s/%s\n", pos[0], pos[1]))
	}
	fmt.Fprint(stderr, projectionUsage)
	return errUsage
}

// watchReplay prints a replay's progress until every partition's
// committed offset has reached ends (the log's end offsets when the replay
// started). The server's WatchReplay stream ends earlier, once the version
// counts as caught up (a lag under ServiceConfig.CaughtUpLag, which on a
// small log is before it has applied anything); progress is then polled
// every poll, and printed when it changes.
func watchReplay(ctx context.Context, client projectionv1connect.ProjectionServiceClient, auth func(http.Header),
	name, version string, ends map[int32]int64, out func(proto.Message, string) error, poll time.Duration) error {
	wreq := connect.NewRequest(&projectionv1.WatchReplayRequest{Name: name, Version: version})
	auth(wreq.Header())
	stream, err := client.WatchReplay(ctx, wreq)
	if err != nil {
		return err
	}
	defer stream.Close()
	last := ""
	for stream.Receive() {
		p := stream.Msg().Projection
		last = describeProjection(p, false)
		if err := out(stream.Msg(), last); err != nil {
			return err
		}
		if reachedOffsets(p, ends) {
			return nil
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		req := connect.NewRequest(&projectionv1.GetReplayRequest{Name: name, Version: version})
		auth(req.Header())
		resp, err := client.GetReplay(ctx, req)
		if err != nil {
			return err
		}
		p := resp.Msg.Projection
		if p.State == projectionv1.ProjectionState_PROJECTION_STATE_RETIRED {
			return fmt.Errorf("%s/%s was retired before it reached the log's end as of the replay's start (%s)", name, version, formatOffsets(ends))
		}
		if line := describeProjection(p, false); line != last {
			last = line
			if err := out(resp.Msg, line); err != nil {
				return err
			}
		}
		if reachedOffsets(p, ends) {
			return nil
		}
	}
}

// reachedOffsets reports whether every partition of ends has its committed
// offset at or past its end.
func reachedOffsets(p *projectionv1.Projection, ends map[int32]int64) bool {
	at := make(map[int32]int64, len(p.GetPartitions()))
	for _, pp := range p.GetPartitions() {
		at[pp.Partition] = pp.Offset
	}
	for part, end := range ends {
		if off, ok := at[part]; !ok || off < end {
			return false
		}
	}
	return true
}

// formatOffsets renders end offsets as "partition 0 at 12, 1 at 40".
func formatOffsets(ends map[int32]int64) string {
	parts := slices.Sorted(maps.Keys(ends))
	var b strings.Builder
	for i, part := range parts {
		if i == 0 {
			b.WriteString("partition ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d at %d", part, ends[part])
	}
	if b.Len() == 0 {
		return "no partitions"
	}
	return b.String()
}

// printAnswer prints an API answer: as protobuf JSON with --json, else
// as text.
func printAnswer(w io.Writer, asJSON bool, m proto.Message, text string) error {
	if asJSON {
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	_, err := fmt.Fprint(w, text)
	return err
}

// describeProjection renders a version on one line, with its partitions
// when detailed.
func describeProjection(p *projectionv1.Projection, detailed bool) string {
	state := strings.ToLower(strings.TrimPrefix(p.State.String(), "PROJECTION_STATE_"))
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s\t%s\tapplied %d\tduplicates %d\texcluded %d\tlag %d", p.Name, p.Version, state,
		p.EventsApplied, p.DuplicatesDropped, p.EventsExcluded, p.Lag)
	if p.EventsPerSecond > 0 {
		fmt.Fprintf(&b, "\t%.0f events/s", p.EventsPerSecond)
	}
	if p.EtaSeconds > 0 {
		fmt.Fprintf(&b, "\tETA %s", (time.Duration(p.EtaSeconds * float64(time.Second))).Round(time.Second))
	}
	if p.PreviousVersion != "" {
		fmt.Fprintf(&b, "\trollback to %s", p.PreviousVersion)
	}
	b.WriteString("\n")
	if detailed {
		for _, pp := range p.Partitions {
			fmt.Fprintf(&b, "  partition %d\toffset %d of %d\tlag %d\n", pp.Partition, pp.Offset, pp.EndOffset, pp.Lag)
		}
	}
	return b.String()
}
