// Package projection is the stream-processing service: it consumes the event
// log partition by partition, writes the traffic read model into the view
// store as partial aggregates, compacts them, and manages projection
// versions (replay, activate, rollback).
//
// # The flow
//
// Each part has one job and talks to the others through methods:
//
//   - derive.go, the logic, pure: an event and its visitor's session to the
//     aggregates it adds to (deriver: session, facts, add), for the
//     dimensions and rollups of the version's layout (pkg/catalog).
//   - state.go and statelog.go, the partition's private state: event ids
//     within the dedupe window and open sessions, bounded by those time
//     windows, written to the store as segments.
//   - writer.go, the open additions: one block builder (pkg/block) per
//     property and hour touched since the last checkpoint, encoded and
//     emptied by each checkpoint. Nothing is kept after it, and nothing is
//     read back from the store.
//   - partition.go ties the three together for one log partition: apply a
//     record, build a checkpoint, record that it committed.
//   - runner.go, the Projector: claims partitions through the consumer
//     group, reads records, decides when to checkpoint, commits, handles
//     dead letters, and runs a Compactor for each claimed partition's share
//     of the compaction shards.
//   - compactor.go merges committed additions into hour and day blocks.
//   - supervisor.go runs every running version of every projection;
//     service.go is ProjectionService (replay, activate, rollback, delete).
//
// # Exactly once
//
// A checkpoint's additions are keyed by the partition and the first offset
// of the records they hold, and its progress is committed after them (a
// store that cannot commit atomically records the checkpoint's end first,
// as the progress's Intent). A partition restarts from its committed
// progress and its committed state (segments written by a checkpoint that
// did not commit are left out), so it derives exactly what it derived
// before; when an interrupted checkpoint's Intent is set, the partition
// reads up to that end and checkpoints there first, rewriting the same
// additions in place. Readers and the compactor ignore additions past a
// partition's committed progress. Events are deduplicated by (property,
// client, event id) within the dedupe window, so client retries count once.
// TestInterruptedCheckpointsRewritten and the random-kill replay tests
// check it end to end.
package projection
