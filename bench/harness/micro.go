package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MicroResult is one Go benchmark's line.
type MicroResult struct {
	Package     string             `json:"package"`
	Name        string             `json:"name"`
	N           int64              `json:"n"`
	NsPerOp     float64            `json:"nsPerOp"`
	BytesPerOp  float64            `json:"bytesPerOp,omitempty"`
	AllocsPerOp float64            `json:"allocsPerOp,omitempty"`
	Extra       map[string]float64 `json:"extra,omitempty"`
}

// MicroResults is bench/micro.json.
type MicroResults struct {
	Date    string        `json:"date"`
	Commit  string        `json:"commit"`
	Machine Machine       `json:"machine"`
	Results []MicroResult `json:"results"`
	Notes   []string      `json:"notes,omitempty"` // test log lines worth keeping
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

// parseMicro reads `go test -bench` output.
func parseMicro(path string) ([]MicroResult, []string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	var out []MicroResult
	var notes []string
	pkg := ""
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/sextant-analytics/sextant/")
			continue
		}
		if strings.Contains(line, "users sketch:") {
			notes = append(notes, strings.TrimSpace(line))
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := MicroResult{Package: pkg, Name: m[1], Extra: map[string]float64{}}
		r.N, _ = strconv.ParseInt(m[3], 10, 64)
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.NsPerOp = v
			case "B/op":
				r.BytesPerOp = v
			case "allocs/op":
				r.AllocsPerOp = v
			default:
				r.Extra[f[i+1]] = v
			}
		}
		out = append(out, r)
	}
	return out, notes, sc.Err()
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// microReport turns go test -bench output into bench/micro.json and the
// micro tables of BENCHMARKS.md.
func microReport(in, jsonPath, md, repo string) error {
	rs, notes, err := parseMicro(in)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("no benchmark results in %s", in)
	}
	commit, _ := buildCommit(repo)
	res := MicroResults{Date: time.Now().UTC().Format(time.RFC3339), Commit: commit, Machine: readMachine(goVersion()), Results: rs, Notes: notes}
	if jsonPath != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	var b strings.Builder
	short := commit
	if len(short) > 12 {
		short = short[:12]
	}
	fmt.Fprintf(&b, "`./bench/micro.sh`, %s, commit %s, %d cores (%s). One run each (`-count 1`); the packages' own benchmarks plus `bench/micro`.\n\n", res.Date, short, res.Machine.Cores, res.Machine.CPU)
	b.WriteString("| Package | Benchmark | Time/op | B/op | allocs/op | Reported |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		var extra []string
		for k, v := range r.Extra {
			extra = append(extra, fmt.Sprintf("%s %s", strconv.FormatFloat(v, 'g', 4, 64), k))
		}
		sortStrings(extra)
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f | %s |\n", r.Package, strings.TrimPrefix(r.Name, "Benchmark"), fmtNs(r.NsPerOp), r.BytesPerOp, r.AllocsPerOp, strings.Join(extra, ", "))
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	b.WriteString("\n")
	if md != "" {
		return spliceMarkdown(md, "micro", b.String())
	}
	fmt.Print(b.String())
	return nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
