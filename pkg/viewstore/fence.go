package viewstore

import "context"

type fenceKey struct{}

// WithFence returns ctx carrying check. A store calls CheckFence right
// before each write it makes with ctx or a context derived from it (each
// step of a Commit, each group of rows, a block, a deletion) and makes no
// further write once check fails. A writer that may have lost its right
// to write while it did not run (a projector stopped or starved past its
// consumer group's session, whose partitions another copy took over)
// fences its writes, so that none of them lands after the new owner's.
func WithFence(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, fenceKey{}, check)
}

// CheckFence returns the error of ctx's fence, nil without one.
func CheckFence(ctx context.Context) error {
	if check, _ := ctx.Value(fenceKey{}).(func() error); check != nil {
		return check()
	}
	return nil
}
