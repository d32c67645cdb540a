package main

import (
	"io"
	"strings"
	"testing"
)

func TestParseServeRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{nil, ""},
		{[]string{"--projection-memory", "67108864"}, ""},
		{[]string{"--projection-memory", "1000"}, "--projection-memory"},
		{[]string{"--services", "insights", "--kafka-brokers", "k:9092", "--projection-memory", "1000"}, ""},
		{[]string{"--flush-interval", "2m"}, "--flush-interval"},
		{[]string{"--max-batch-events", "0"}, "--max-batch-events"},
		{[]string{"--services", "collect"}, "--services"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseServe(tc.args, io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
