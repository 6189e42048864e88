package webexlogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// provider is what discovery found: the endpoints and a verifier of the
// issuer's ID tokens.
type provider struct {
	authURL, tokenURL string
	verifier          *oidc.IDTokenVerifier
}

// discover returns the provider, reading the discovery document at the
// first call and after a failed one, at most one read at a time. A
// caller who gives up does not fail the read the others wait for.
func (c *Client) discover(ctx context.Context) (*provider, error) {
	c.mu.Lock()
	p := c.prov
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	ch := c.flight.DoChan("discovery", func() (any, error) {
		p, err := c.readDiscovery(context.WithoutCancel(ctx))
		if err == nil {
			c.mu.Lock()
			c.prov = p
			c.mu.Unlock()
		}
		return p, err
	})
	select {
	case <-ctx.Done():
		return nil, &Error{Op: "discovery", Err: unavailable(ctx, ctx.Err())}
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*provider), nil
	}
}

// discoveryDoc is what the relying party reads of the document beyond
// what go-oidc does.
type discoveryDoc struct {
	JWKSURI     string   `json:"jwks_uri"`
	SigningAlgs []string `json:"id_token_signing_alg_values_supported"`
}

// readDiscovery reads <issuer>/.well-known/openid-configuration with
// go-oidc, which insists that the document names the configured issuer.
func (c *Client) readDiscovery(ctx context.Context) (*provider, error) {
	where := c.issuer + "/.well-known/openid-configuration"
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, c.hc), c.issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		var ue *url.Error
		switch {
		case errors.As(err, &mismatch):
			return nil, &Error{Op: "discovery", Detail: fmt.Sprintf("the document at %s names the issuer %q; set CONSOLE_OIDC_ISSUER to the issuer Webex names",
				where, clean(mismatch.Discovered)), Err: ErrMisconfigured}
		case errors.As(err, &ue) || ctx.Err() != nil:
			return nil, &Error{Op: "discovery", Err: unavailable(ctx, err)}
		default: // not 200, or not JSON: its text holds the body, left out
			return nil, &Error{Op: "discovery", Detail: "no usable document at " + where, Err: ErrUnavailable}
		}
	}
	var doc discoveryDoc
	if err := op.Claims(&doc); err != nil {
		return nil, &Error{Op: "discovery", Detail: "no usable document at " + where, Err: ErrUnavailable}
	}
	ep := op.Endpoint()
	for name, u := range map[string]string{"authorization_endpoint": ep.AuthURL, "token_endpoint": ep.TokenURL, "jwks_uri": doc.JWKSURI} {
		if !absoluteHTTP(u) {
			return nil, &Error{Op: "discovery", Detail: fmt.Sprintf("the document at %s has no usable %s", where, name), Err: ErrUnavailable}
		}
	}
	// Only algorithms go-oidc verifies; RS256 (Webex's) if none is named.
	var algs []string
	for _, a := range doc.SigningAlgs {
		if slices.Contains(supportedAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	keys := &keySet{url: doc.JWKSURI, hc: c.hc, algs: algs, now: c.now}
	v := oidc.NewVerifier(c.issuer, keys, &oidc.Config{ClientID: c.clientID, SupportedSigningAlgs: algs, Now: c.now})
	return &provider{authURL: ep.AuthURL, tokenURL: ep.TokenURL, verifier: v}, nil
}

// supportedAlgs are the asymmetric JWS algorithms accepted for ID tokens.
var supportedAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// minRefetch is how long after a successful read of the JWKS an unknown
// key does not make it read again: a key Webex just rotated in waits that
// long at most, a flood of tokens signed by unknown keys cannot make us
// hammer Webex.
const minRefetch = 30 * time.Second

// keySet is the issuer's JWKS, read when a token's key is not in the
// cache (and at the first token). A failed read is reported through the
// context (fetchFailure), so that Exchange can tell an unreachable Webex
// from a bad signature: go-oidc keeps only the text of a key set's errors.
type keySet struct {
	url  string
	hc   *http.Client
	algs []string
	now  func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // of the last successful read
	flight  singleflight.Group
}

var _ oidc.KeySet = (*keySet)(nil)

// fetchFailure records, for one verification, that the JWKS could not be
// read.
type fetchFailure struct{ err error }

type fetchFailureKey struct{}

func withFetchFailure(ctx context.Context) (context.Context, *fetchFailure) {
	f := &fetchFailure{}
	return context.WithValue(ctx, fetchFailureKey{}, f), f
}

// VerifySignature returns the payload of jwt if one of the issuer's keys
// signed it, reading the JWKS again once for a key it does not hold.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	algs := make([]jose.SignatureAlgorithm, len(k.algs))
	for i, a := range k.algs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(jwt, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed jws")
	}
	kid := jws.Signatures[0].Header.KeyID

	k.mu.Lock()
	cached, fetched := k.keys, k.fetched
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, cached, kid); ok {
		return payload, nil
	}
	if !fetched.IsZero() && k.now().Sub(fetched) < minRefetch {
		return nil, errors.New("signed by none of the issuer's keys")
	}
	keys, err := k.refresh(ctx)
	if err != nil {
		if f, ok := ctx.Value(fetchFailureKey{}).(*fetchFailure); ok {
			f.err = err
		}
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("signed by none of the issuer's keys")
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh reads the JWKS, one read at a time, and caches it.
func (k *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	ch := k.flight.DoChan("keys", func() (any, error) {
		keys, err := k.read(context.WithoutCancel(ctx))
		if err == nil {
			k.mu.Lock()
			k.keys, k.fetched = keys, k.now()
			k.mu.Unlock()
		}
		return keys, err
	})
	select {
	case <-ctx.Done():
		return nil, unavailable(ctx, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]jose.JSONWebKey), nil
	}
}

// read fetches the JWKS: its signing keys of a type go-jose knows.
func (k *keySet) read(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, classed{ErrUnavailable, errors.New("jwks request not built")}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classed{ErrUnavailable, fmt.Errorf("jwks answered HTTP %d", resp.StatusCode)}
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(raw, &set) != nil {
		return nil, classed{ErrUnavailable, errors.New("jwks is not JSON")}
	}
	var keys []jose.JSONWebKey
	for _, r := range set.Keys {
		var key jose.JSONWebKey
		if json.Unmarshal(r, &key) != nil || !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue // a key of a kind we cannot use is skipped, as RFC 7517 says
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, classed{ErrUnavailable, errors.New("jwks holds no usable key")}
	}
	return keys, nil
}
