package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Probe reports whether the log accepts appends now: a broker answers a
// metadata request for the topic on a connection opened for the probe
// (not a client's cached state, which keeps saying yes long after the
// brokers died), and every partition of the topic has a leader among the
// live brokers it lists. The probe is bounded by ctx's deadline (1 s
// without one). It does not check min.insync.replicas: a partition with
// too few in-sync replicas passes, and its appends fail (collect answers
// them 503).
func (l *Log) Probe(ctx context.Context) error {
	if l.isClosing() {
		return closedErr("probe")
	}
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return ctx.Err()
	}
	conf := sarama.NewConfig()
	conf.Version = kafkaVersion
	conf.ClientID = l.cfg.ClientID
	conf.Net.DialTimeout, conf.Net.ReadTimeout, conf.Net.WriteTimeout = timeout, timeout, timeout
	var errs []error
	for _, addr := range l.cfg.Brokers {
		if ctx.Err() != nil {
			break
		}
		err := l.probeBroker(addr, conf)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	if len(errs) == 0 {
		return ctx.Err()
	}
	return fmt.Errorf("kafkalog: no broker accepts appends to %q: %w", l.topic, errors.Join(errs...))
}

func (l *Log) probeBroker(addr string, conf *sarama.Config) error {
	b := sarama.NewBroker(addr)
	if err := b.Open(conf); err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	resp, err := b.GetMetadata(sarama.NewMetadataRequest(kafkaVersion, []string{l.topic}))
	if err != nil {
		return err
	}
	live := map[int32]bool{}
	for _, br := range resp.Brokers {
		live[br.ID()] = true
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("metadata of %d topics", len(resp.Topics))
	}
	t := resp.Topics[0]
	if t.Err != sarama.ErrNoError {
		return t.Err
	}
	if len(t.Partitions) == 0 {
		return errors.New("the topic has no partitions")
	}
	for _, p := range t.Partitions {
		if p.Err != sarama.ErrNoError && p.Err != sarama.ErrReplicaNotAvailable {
			return fmt.Errorf("partition %d: %w", p.ID, p.Err)
		}
		if p.Leader < 0 || !live[p.Leader] {
			return fmt.Errorf("partition %d has no live leader", p.ID)
		}
	}
	return nil
}
