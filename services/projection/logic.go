package projection

import (
	"strings"
)

// Logic is one registered version of a projection's logic. Replaying a
// version rebuilds its read model from the event log in a namespace of its
// own, so versions are compared side by side before one is activated.
type Logic struct {
	Name        string
	Version     string
	Description string
	Rules       Rules
}

// Logics are the versions this binary can run.
func Logics() []Logic {
	v1 := DefaultRules()
	v2 := DefaultRules()
	v2.NormalizePaths = true
	v2.ExcludeBots = true
	return []Logic{
		{Name: "traffic", Version: "v1", Rules: v1,
			Description: "traffic: events, page views, users and sessions by time, page, source, device and country"},
		{Name: "traffic", Version: "v2", Rules: v2,
			Description: "traffic v2: page paths normalised (case, trailing slash, duplicate slashes, index pages) and known bots excluded (counted as excluded)"},
	}
}

// FindLogic returns a registered logic.
func FindLogic(logics []Logic, name, version string) (Logic, bool) {
	for _, l := range logics {
		if l.Name == name && l.Version == version {
			return l, true
		}
	}
	return Logic{}, false
}

// normalizePath folds the spellings of one page into one path: lower case,
// no duplicate or trailing slashes, no index document.
func normalizePath(p string) string {
	if p == "" {
		return p
	}
	p = strings.ToLower(p)
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	for _, index := range []string{"/index.html", "/index.htm", "/index.php"} {
		if strings.HasSuffix(p, index) {
			p = p[:len(p)-len(index)+1]
			break
		}
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p
}
