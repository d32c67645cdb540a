package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Keys are one property's keys, as `sextant property create --json` prints
// them.
type Keys struct {
	PropertyID string `json:"propertyId"`
	WriteKey   string `json:"writeKey"`
	ReadKey    string `json:"readKey,omitempty"`
}

// ReadKeys reads JSON lines of Keys (blank lines and lines starting with #
// are skipped). Every line needs a write key.
func ReadKeys(r io.Reader) ([]Keys, error) {
	var out []Keys
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var k Keys
		if err := json.Unmarshal([]byte(line), &k); err != nil {
			return nil, fmt.Errorf("keys line %d: %w", n, err)
		}
		if k.WriteKey == "" {
			return nil, fmt.Errorf("keys line %d: no writeKey", n)
		}
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	return out, nil
}
