package kafkalog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// sarama logs through a process-wide StdLogger. This package installs an
// adapter once, before it creates its first client, and points it at the
// latest non-nil Logger it was given; sarama's messages (connection
// churn, rebalances, retries) go to Debug.
var (
	saramaTarget  atomic.Pointer[slog.Logger]
	installSarama sync.Once
)

func installLogger(l *slog.Logger) {
	if l != nil {
		saramaTarget.Store(l.With("component", "sarama"))
	}
	installSarama.Do(func() { sarama.Logger = saramaLogger{} })
}

type saramaLogger struct{}

func (saramaLogger) log(msg string) {
	l := saramaTarget.Load()
	if l == nil {
		l = slog.Default()
	}
	l.Debug(strings.TrimSpace(msg))
}

func (s saramaLogger) Print(v ...any) {
	if s.enabled() {
		s.log(fmt.Sprint(v...))
	}
}

func (s saramaLogger) Printf(format string, v ...any) {
	if s.enabled() {
		s.log(fmt.Sprintf(format, v...))
	}
}

func (s saramaLogger) Println(v ...any) {
	if s.enabled() {
		s.log(fmt.Sprintln(v...))
	}
}

// enabled avoids formatting messages nobody reads.
func (saramaLogger) enabled() bool {
	l := saramaTarget.Load()
	if l == nil {
		l = slog.Default()
	}
	return l.Enabled(context.Background(), slog.LevelDebug)
}
