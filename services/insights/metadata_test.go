package insights

import (
	"slices"
	"testing"

	"github.com/sextant-analytics/sextant/pkg/catalog"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// TestMetadataCoversTheEngine: every listed name is one reports accept,
// with the same type, and every dimension and metric reports accept
// outside realtime is listed.
func TestMetadataCoversTheEngine(t *testing.T) {
	dims := map[string]bool{}
	for _, d := range dimensionMetadata {
		if dims[d.ApiName] {
			t.Errorf("dimension %s listed twice", d.ApiName)
		}
		dims[d.ApiName] = true
		if _, ok, _ := lookupDim(d.ApiName, false); !ok {
			t.Errorf("listed dimension %s is not accepted by reports", d.ApiName)
		}
		if d.UiName == "" || d.Description == "" || d.Category == "" {
			t.Errorf("dimension %s lacks a UI name, description or category", d.ApiName)
		}
	}
	accepted := []string{"country", "continent", "continentId", "subContinent", "subContinentCode", "sessionSourceMedium", "date", "dateHour", "dateHourMinute", "hour", "dayOfWeek"}
	for _, d := range catalog.Dimensions {
		if catalog.IsInternal(d.Name) {
			if _, ok, _ := lookupDim(d.Name, false); ok {
				t.Errorf("internal dimension %s is accepted by reports", d.Name)
			}
			continue
		}
		accepted = append(accepted, d.Name)
	}
	for _, name := range accepted {
		if !dims[name] {
			t.Errorf("dimension %s is accepted by reports but not listed", name)
		}
	}
	listed := map[string]bool{}
	for _, m := range metricMetadata {
		listed[m.ApiName] = true
		def, ok := lookupMetric(m.ApiName)
		if !ok {
			t.Errorf("listed metric %s is not accepted by reports", m.ApiName)
			continue
		}
		if def.typ != m.Type {
			t.Errorf("metric %s listed as %v, reported as %v", m.ApiName, m.Type, def.typ)
		}
		if m.UiName == "" || m.Description == "" || m.Category == "" {
			t.Errorf("metric %s lacks a UI name, description or category", m.ApiName)
		}
	}
	for id := metricID(0); id < numMetrics; id++ {
		if id == mCustom {
			continue // a property's custom metrics are listed with it (TestMetadataListsCustomDefinitions)
		}
		found := false
		for name := range listed {
			if def, _ := lookupMetric(name); def.id == id {
				found = true
			}
		}
		if !found {
			t.Errorf("metric %d is computed by reports but not listed", id)
		}
	}
}

// TestMetadataFollowsTheLayout: a version lists the dimensions it stores
// and those derived from them, not the others.
func TestMetadataFollowsTheLayout(t *testing.T) {
	layout := &catalog.Layout{Dims: []string{catalog.EventName, catalog.CountryID}}
	var got []string
	for _, d := range metadataOf(property.Property{ID: "7"}, layout).Dimensions {
		got = append(got, d.ApiName)
	}
	want := []string{"eventName", "country", "continent", "continentId", "subContinent", "subContinentCode", "countryId", "date", "dateHour", "dateHourMinute", "hour", "dayOfWeek"}
	if !slices.Equal(got, want) {
		t.Fatalf("dimensions %v, want %v", got, want)
	}
}

// TestMetadataListsCustomDefinitions: a property's custom dimensions and
// metrics are listed by versions that store them.
func TestMetadataListsCustomDefinitions(t *testing.T) {
	p := property.Property{ID: "7", CustomEventDimensions: []string{"plan"}, CustomUserDimensions: []string{"tier"}, CustomEventMetrics: []string{"amount"}}
	md := metadataOf(p, catalog.TrafficUsers)
	var got []string
	for _, d := range md.Dimensions {
		if d.CustomDefinition {
			got = append(got, d.ApiName)
		}
	}
	for _, m := range md.Metrics {
		if m.CustomDefinition {
			got = append(got, m.ApiName)
		}
	}
	if !slices.Equal(got, []string{"customEvent:plan", "customUser:tier", "customEvent:amount"}) {
		t.Errorf("custom definitions listed: %v", got)
	}
	for _, d := range metadataOf(p, catalog.TrafficDetail).Dimensions {
		if d.CustomDefinition {
			t.Errorf("traffic/v4 lists %s", d.ApiName)
		}
	}
}
