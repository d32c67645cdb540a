package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/property"
)

// TestDeniedMessages: a key of the wrong scope is refused in plain
// English ("an admin key", never "a admin key").
func TestDeniedMessages(t *testing.T) {
	for _, tc := range []struct {
		have, want property.Scope
		msg        string
	}{
		{property.Admin, property.Read, "an admin key cannot be used here: this call needs a read key"},
		{property.Read, property.Write, "a read key cannot be used here: this call needs a write key"},
		{property.Write, property.Admin, "a write key cannot be used here: this call needs an admin key"},
	} {
		ctx := WithPrincipal(context.Background(), property.Principal{Scope: tc.have, PropertyID: "p1"})
		var err error
		if tc.want == property.Admin {
			err = RequireAdmin(ctx)
		} else {
			_, err = Authorize(ctx, "p1", tc.want)
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s key where %s is needed: %v, want %q", tc.have, tc.want, err, tc.msg)
		}
	}
	if got := KeyOf("measurement"); got != "a measurement key" {
		t.Errorf("KeyOf(measurement) = %q", got)
	}
}
