package gtag

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzBatch: any request's hits either get messages or become a batch of
// one event per hit (and per first-visit or session-start flag); batch
// never panics.
func FuzzBatch(f *testing.F) {
	for _, seed := range []string{
		"v=2&tid=G-X&cid=1.2&sid=1765000000&sct=2&dl=https%3A%2F%2Fa.example%2F&en=page_view&_fv=1&_ss=1&_p=1&_s=1\nen=scroll&_s=2&epn.percent_scrolled=90",
		"cid=1&en=purchase&ep.coupon=X&epn.value=9.5&up.plan=pro&upn.visits=4&cu=EUR",
		"cid=1&en=purchase&pr1=idSKU1~nmShirt~pr9.99~qt2&pr2=idB~prx&pr10=",
		"cid=&en=", "en=x\n\n\nen=y", "cid=1&en=x&epn.v=NaN&_et=-1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		shared, rest, _ := strings.Cut(raw, "\n")
		q, err := url.ParseQuery(shared)
		if err != nil {
			return
		}
		var lines []string
		for _, l := range strings.Split(rest, "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		hits, bad := hitsOf(q, lines)
		if bad != nil {
			return
		}
		req, msgs := batch("42", hits)
		if len(msgs) > 0 {
			for _, m := range msgs {
				if m.Description == "" || m.ValidationCode == "" {
					t.Fatalf("message %+v", m)
				}
			}
			return
		}
		if req.ClientId == "" || len(req.Events) < len(hits) || len(req.Events) > 3*len(hits) {
			t.Fatalf("%d hits became %v", len(hits), req)
		}
		for _, e := range req.Events {
			if e.Name == "" {
				t.Fatalf("an event without a name: %v", req)
			}
		}
	})
}
