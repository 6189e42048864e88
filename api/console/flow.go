package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/wxcc/tokenservice/api/listing"
)

// flowPanel is what a flow author sets in Flow Designer's HTTP Request
// activity to get a token from this service: never the passphrase itself.
type flowPanel struct {
	// URL is GET <api origin>/?name=<name>: CONSOLE_URL, else the origin
	// this page came from (the console is served by the api).
	URL string
	// Header is the passphrase's header; OwnPassphrase says which one
	// opens this token.
	Header        string
	OwnPassphrase bool
	// Path is where the token is in the api's JSON answer.
	Path string
	// TimeoutMS is the request timeout to set: the api answers within
	// INLINE_REFRESH_TIMEOUT (InlineMS) even when it must refresh first,
	// plus a margin for the network.
	TimeoutMS, InlineMS int64
}

// flowMargin is what the recommended timeout adds to
// INLINE_REFRESH_TIMEOUT for the way between WxCC and the api.
const flowMargin = 300 * time.Millisecond

func (cs *Console) flowPanel(r *http.Request, row listing.Row) flowPanel {
	base := cs.cfg.ConsoleURL
	if base == "" {
		base = consoleOrigin(r)
	}
	timeout := cs.cfg.InlineTimeout + flowMargin
	timeout = (timeout + 99*time.Millisecond) / (100 * time.Millisecond) * (100 * time.Millisecond)
	return flowPanel{
		URL: base + "/?name=" + url.QueryEscape(row.Name), Header: "x-token-passphrase", OwnPassphrase: row.HasPassphrase,
		Path: "$.token", TimeoutMS: timeout.Milliseconds(), InlineMS: cs.cfg.InlineTimeout.Milliseconds(),
	}
}
