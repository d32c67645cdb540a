package auth

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/sextant-analytics/sextant/gen/sextant/admin/v1"
	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	insightsv1 "github.com/sextant-analytics/sextant/gen/sextant/insights/v1"
	projectionv1 "github.com/sextant-analytics/sextant/gen/sextant/projection/v1"
	"github.com/sextant-analytics/sextant/pkg/ga4data"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// TestScopesCoverEveryRPC checks that every RPC of Sextant's services and
// of the GA4 Data API has its scopes, and what kind of key each service
// takes: an RPC left out would be served without a key.
func TestScopesCoverEveryRPC(t *testing.T) {
	scopes := Scopes()
	listed := 0
	for _, tc := range []struct {
		file protoreflect.FileDescriptor
		want []property.Scope // every RPC's, unless in other
		// other are the RPCs that take other keys.
		other map[string][]property.Scope
	}{
		{adminv1.File_sextant_admin_v1_admin_proto, []property.Scope{property.Admin}, nil},
		{collectv1.File_sextant_collect_v1_collect_proto, []property.Scope{property.Write}, nil},
		{insightsv1.File_sextant_insights_v1_insights_proto, []property.Scope{property.Read}, nil},
		{projectionv1.File_sextant_projection_v1_projection_proto, []property.Scope{property.Admin}, map[string][]property.Scope{
			"ListProjections": {property.Read, property.Admin},
			"GetReplay":       {property.Read, property.Admin},
			"WatchReplay":     {property.Read, property.Admin},
		}},
	} {
		services := tc.file.Services()
		for i := range services.Len() {
			svc := services.Get(i)
			methods := svc.Methods()
			for j := range methods.Len() {
				m := methods.Get(j)
				procedure := "/" + string(svc.FullName()) + "/" + string(m.Name())
				want := tc.want
				if o, ok := tc.other[string(m.Name())]; ok {
					want = o
				}
				got, ok := scopes[procedure]
				if !ok {
					t.Errorf("%s has no scopes: it would be served without a key", procedure)
					continue
				}
				listed++
				if !slices.Equal(got, want) {
					t.Errorf("%s takes %v keys, want %v", procedure, got, want)
				}
			}
		}
	}
	for _, p := range ga4data.Procedures {
		if got := scopes[p]; !slices.Equal(got, []property.Scope{property.Read}) {
			t.Errorf("%s takes %v keys, want read keys", p, got)
		}
		listed++
	}
	if listed != len(scopes) {
		t.Errorf("the table lists %d procedures, the services have %d: it names one that does not exist", len(scopes), listed)
	}
}
