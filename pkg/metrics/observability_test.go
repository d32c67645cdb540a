package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// TestObservabilityQueriesExist: every metric the Grafana dashboard and
// the alert rules in tilt/observability query is one Sextant registers
// (histograms through their _bucket, _sum and _count series), and both
// files parse.
func TestObservabilityQueriesExist(t *testing.T) {
	m := New()
	m.RegistryCache(func() (int, int) { return 0, 0 }, func() int { return 0 })
	registered := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() { m.Registry.Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`fqName: "([a-z_:]+)"`)
	for d := range ch {
		if sub := fqName.FindStringSubmatch(d.String()); sub != nil {
			registered[sub[1]] = true
		}
	}
	if !registered["sextant_ingest_events_total"] {
		t.Fatalf("the registry's descriptions were not read: %v", registered)
	}

	var exprs []string
	b, err := os.ReadFile("../../tilt/observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	b, err = os.ReadFile("../../tilt/observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("alerts.yaml: a rule without a name or an expression: %+v", r)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("read %d expressions from the dashboard and the rules", len(exprs))
	}
	name := regexp.MustCompile(`sextant_[a-z_]+`)
	for _, e := range exprs {
		for _, n := range name.FindAllString(e, -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(n, suffix); ok && registered[s] {
					base = s
				}
			}
			if !registered[base] {
				t.Errorf("%q queries %s, which Sextant does not export", e, n)
			}
		}
	}
}
