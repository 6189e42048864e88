package webex

import "time"

// testOptions is o with what a test leaves unset filled in: Webex's real
// URLs (never called: each test's server gets its own) and a timeout.
func testOptions(o Options) Options {
	if o.TokenURL == "" {
		o.TokenURL = "https://webexapis.com/v1/access_token"
	}
	if o.AuthorizeURL == "" {
		o.AuthorizeURL = "https://webexapis.com/v1/authorize"
	}
	if o.APIURL == "" {
		o.APIURL = "https://webexapis.com"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}
