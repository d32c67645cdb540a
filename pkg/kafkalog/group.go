package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// groupState is what a running group (Run) tells Commit: the member and
// generation of its current session, if any.
type groupState struct {
	mu         sync.Mutex
	memberID   string
	generation int32
	active     bool
}

func (g *groupState) set(member string, generation int32) {
	g.mu.Lock()
	g.memberID, g.generation, g.active = member, generation, true
	g.mu.Unlock()
}

func (g *groupState) clear() {
	g.mu.Lock()
	g.memberID, g.generation, g.active = "", 0, false
	g.mu.Unlock()
}

func (g *groupState) identity() (member string, generation int32, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.memberID, g.generation, g.active
}

// Run makes this process a member of consumer group `group` (Kafka's
// classic group protocol, eager sticky assignment) and calls claim, each in
// its own goroutine, for every partition assigned to it. A claim's context
// ends when its partition is revoked (the session ends at a rebalance), when
// ctx ends or when the log is closed; the session waits for every claim to
// return before the member rejoins, so a partition is never claimed twice at
// once within the group. A claim that fails before its context ends is
// logged and called again after a backoff; one that returns nil early
// leaves its partition idle until the next rebalance.
//
// Claims should pass their context (or one derived from it) to Read and
// Commit: Read then takes records from the claim's own stream, and Commit
// commits as the group member.
//
// Run rejoins after every rebalance until ctx ends, then leaves the group
// and returns nil, or an error wrapping eventlog.ErrClosed when the log was
// closed. A Log runs a given group at most once at a time.
func (l *Log) Run(ctx context.Context, group string, claim func(ctx context.Context, p int32) error) error {
	if group == "" {
		return errors.New("kafkalog: run: empty group")
	}
	if claim == nil {
		return errors.New("kafkalog: run: nil claim")
	}
	l.mu.Lock()
	if l.isClosing() {
		l.mu.Unlock()
		return closedErr("run")
	}
	if _, dup := l.groups[group]; dup {
		l.mu.Unlock()
		return fmt.Errorf("kafkalog: run: group %q is already running on this log", group)
	}
	gs := &groupState{}
	l.groups[group] = gs
	l.runs.Add(1)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.groups, group)
		l.mu.Unlock()
		l.runs.Done()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	logger := l.logger.With("group", group)
	h := &groupHandler{log: l, group: group, state: gs, claim: claim, logger: logger}
	const minBackoff, maxBackoff = 250 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}

	var cg sarama.ConsumerGroup
	for ctx.Err() == nil {
		var err error
		if cg, err = sarama.NewConsumerGroup(l.cfg.Brokers, group, l.cfg.groupConfig()); err == nil {
			break
		}
		logger.Error("joining consumer group failed; retrying", "err", err, "backoff", backoff)
		if !wait() {
			break
		}
	}
	if cg != nil {
		backoff = minBackoff
		for ctx.Err() == nil {
			err := cg.Consume(ctx, []string{l.topic}, h)
			if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			if err == nil {
				backoff = minBackoff // a session ended (rebalance): rejoin at once
				continue
			}
			logger.Warn("consumer group session failed; rejoining", "err", err, "backoff", backoff)
			if !wait() {
				break
			}
		}
		// Leave the group, so the other members take the partitions over
		// at once rather than after the session timeout.
		if err := cg.Close(); err != nil {
			logger.Warn("leaving consumer group", "err", err)
		}
	}
	if l.isClosing() {
		return closedErr("run")
	}
	return nil
}

type groupHandler struct {
	log    *Log
	group  string
	state  *groupState
	claim  func(ctx context.Context, p int32) error
	logger *slog.Logger
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.state.set(s.MemberID(), s.GenerationID())
	h.logger.Info("consumer group session started", "member", s.MemberID(), "generation", s.GenerationID(),
		"partitions", s.Claims()[h.log.topic])
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.state.clear()
	h.logger.Debug("consumer group session ended", "member", s.MemberID(), "generation", s.GenerationID())
	return nil
}

// ConsumeClaim runs the claim function and returns only once it returned
// for good (the session ended): sarama starts the next session only after
// every ConsumeClaim returned.
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	p := c.Partition()
	f := &claimFeed{log: h.log, p: p, claim: c, sem: make(chan struct{}, 1), next: -1}
	ctx := context.WithValue(s.Context(), feedKey{}, f)
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for {
		err := h.claim(ctx, p)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			h.logger.Warn("claim returned before revocation; partition idle until the next rebalance", "partition", p)
			<-ctx.Done()
			return nil
		}
		h.logger.Error("claim failed; retrying", "partition", p, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Commit records that group has processed p up to (excluding) next, as the
// group's committed offset in Kafka (what lag tools read). When this Log
// runs the group (Run) and has a session, the commit is made as that
// session's member and generation, as Kafka requires for a group with
// members; otherwise it is a plain offset commit (generation -1), which
// Kafka accepts only while the group has no members. Moving an offset back
// is allowed.
func (l *Log) Commit(ctx context.Context, group string, p int32, next int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if group == "" {
		return errors.New("kafkalog: commit: empty group")
	}
	if err := l.checkPartition("commit", p); err != nil {
		return err
	}
	if next < 0 {
		return fmt.Errorf("kafkalog: commit: negative offset %d", next)
	}
	if err := l.acquire("commit", true); err != nil {
		return err
	}
	defer l.ops.RUnlock()

	req := sarama.NewOffsetCommitRequest(l.metaCfg, group)
	l.mu.Lock()
	gs := l.groups[group]
	l.mu.Unlock()
	if gs != nil {
		if member, gen, ok := gs.identity(); ok {
			req.ConsumerID, req.ConsumerGroupGeneration = member, gen
		}
	}
	req.AddBlockWithLeaderEpoch(l.topic, p, next, -1, 0, "")
	err := l.withCoordinator(ctx, group, func(b *sarama.Broker) error {
		resp, err := b.CommitOffset(req)
		if err != nil {
			return err
		}
		kerr, ok := resp.Errors[l.topic][p]
		if !ok {
			return sarama.ErrIncompleteResponse
		}
		if !errors.Is(kerr, sarama.ErrNoError) {
			return kerr
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kafkalog: commit group %q partition %d offset %d (member %q, generation %d): %w",
			group, p, next, req.ConsumerID, req.ConsumerGroupGeneration, err)
	}
	return nil
}

// Committed returns group's committed offset of p, 0 if it never committed.
func (l *Log) Committed(ctx context.Context, group string, p int32) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if group == "" {
		return 0, errors.New("kafkalog: committed: empty group")
	}
	if err := l.checkPartition("committed", p); err != nil {
		return 0, err
	}
	if err := l.acquire("committed", true); err != nil {
		return 0, err
	}
	defer l.ops.RUnlock()
	var off int64
	err := l.withCoordinator(ctx, group, func(b *sarama.Broker) error {
		req := sarama.NewOffsetFetchRequest(l.metaCfg.Version, group, map[string][]int32{l.topic: {p}})
		resp, err := b.FetchOffset(req)
		if err != nil {
			return err
		}
		if gerr := resp.GroupError(); !errors.Is(gerr, sarama.ErrNoError) {
			return gerr
		}
		block := resp.GetBlock(l.topic, p)
		if block == nil {
			return sarama.ErrIncompleteResponse
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			return block.Err
		}
		off = max(0, block.Offset) // -1: nothing committed
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("kafkalog: committed offset of group %q partition %d: %w", group, p, err)
	}
	return off, nil
}

// withCoordinator calls fn with group's coordinator, retrying a few times
// when the coordinator moved, is loading or the connection broke.
func (l *Log) withCoordinator(ctx context.Context, group string, fn func(*sarama.Broker) error) error {
	const attempts = 6
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		b, err := l.meta.Coordinator(group)
		if err == nil {
			err = fn(b)
		}
		if err == nil || attempt == attempts || !retriableCoordinatorError(err) {
			return err
		}
		_ = l.meta.RefreshCoordinator(group)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
		backoff *= 2
	}
}

func retriableCoordinatorError(err error) bool {
	return errors.Is(err, sarama.ErrNotCoordinatorForConsumer) ||
		errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) ||
		errors.Is(err, sarama.ErrOffsetsLoadInProgress) ||
		errors.Is(err, sarama.ErrNotConnected) ||
		errors.Is(err, sarama.ErrBrokerNotAvailable) ||
		errors.Is(err, io.EOF)
}
