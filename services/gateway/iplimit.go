package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sextant-analytics/sextant/pkg/rpcerror"
	"google.golang.org/grpc/codes"
)

// Default per-address limits: generous for a NAT in front of many
// visitors, tight enough that one client cannot take the gateway.
const (
	DefaultIPRate  = 1000 // requests per second
	DefaultIPBurst = 2000
)

// LimitIPs bounds the requests of each client address (IPRate per second,
// up to IPBurst at once), before any other work: besides the per-property
// limit on events, it keeps one client (or a flood without a valid key)
// from taking the gateway. The address is the peer's, or the one a
// trusted proxy forwards (Config.Client). A stream counts as one request.
// A refused request is answered 429 with Retry-After, in the REST error
// shape with the code RESOURCE_EXHAUSTED.
func (g *Gateway) LimitIPs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.RemoteAddr
		if ip := g.cfg.Client.Of(r.Header, r.RemoteAddr).IP; ip.IsValid() {
			key = ip.String()
		}
		wait, ok := g.ipLimiter.Take(key, 1, time.Now())
		if ok {
			h.ServeHTTP(w, r)
			return
		}
		secs := int64((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		rpcerror.WriteHTTP(w, http.StatusTooManyRequests, codes.ResourceExhausted,
			fmt.Sprintf("rate limit of %g requests per second from %s exceeded; retry after %s", g.cfg.IPRate, key, wait.Round(time.Millisecond)))
	})
}
