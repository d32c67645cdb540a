// Package configcheck collects the problems of a configuration, for the
// Validate methods of the services' and adapters' configs.
//
// The convention those configs follow: a zero field means its default,
// which withDefaults fills in (New and Open call it, so a zero Config
// works); Validate reports what no default fixes (a negative size or
// duration, a missing dependency, fields that contradict each other),
// all of it at once, each problem naming its field; the wiring (cmd)
// calls Validate before New.
package configcheck

import (
	"errors"
	"fmt"
	"time"
)

// Errors are a config's problems, each prefixed with the config's name.
type Errors struct {
	prefix string
	errs   []error
}

// New collects the problems of the config named prefix ("collect" …).
func New(prefix string) *Errors { return &Errors{prefix: prefix} }

// Add adds a problem, unless err is nil.
func (e *Errors) Add(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// Errorf adds a problem.
func (e *Errors) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf(e.prefix+": "+format, args...))
}

// NotNegative adds a problem when v is negative (zero means the
// default).
func NotNegative[T int | int64 | float64 | time.Duration](e *Errors, field string, v T) {
	if v < 0 {
		e.Errorf("%s is %v: it must not be negative (zero means the default)", field, v)
	}
}

// Err is every problem joined, or nil.
func (e *Errors) Err() error { return errors.Join(e.errs...) }
