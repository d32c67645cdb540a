package cqlstore

import (
	"context"
	"errors"
	"fmt"
)

// chunkSize is the most data bytes one row of additions or blocks holds:
// larger data goes to addition_chunks or block_chunks in chunks of this
// size, so that no write comes near the largest mutation the cluster
// takes (half a commit log segment).
const chunkSize = 1 << 20

// chunksOf splits data into chunks of chunkSize bytes (the last shorter).
func chunksOf(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(len(data), chunkSize)
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// errChunksMissing says a chunked row's chunks were not all found: a
// newer version replaced them between the row's read and theirs.
var errChunksMissing = errors.New("chunks missing")

// readChunks reads the chunks st selects with args (chunk number, data)
// and joins them; there must be exactly n, numbered 0 to n-1.
func (s *Store) readChunks(ctx context.Context, st statement, n int, args ...any) ([]byte, error) {
	q := s.query(ctx, st).PageSize(4).Bind(args...)
	defer q.Release()
	iter := q.Iter()
	var (
		out   []byte
		chunk int32
		data  []byte
		next  int32
	)
	for iter.Scan(&chunk, &data) {
		if chunk != next {
			_ = iter.Close()
			return nil, fmt.Errorf("chunk %d where %d was expected: %w", chunk, next, errChunksMissing)
		}
		out = append(out, data...)
		data = data[:0]
		next++
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	if int(next) != n {
		return nil, fmt.Errorf("%d of %d chunks: %w", next, n, errChunksMissing)
	}
	return out, nil
}
