package webexfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Paths of Login with Webex (OpenID Connect) that the fake serves. The
// issuer is <fake>/idb, as Webex's is https://idbroker.webex.com/idb, so
// discovery is at <issuer>/.well-known/openid-configuration; the keys are
// where Webex's discovery document puts them (/v1/verification).
const (
	IssuerPath    = "/idb"
	DiscoveryPath = IssuerPath + "/.well-known/openid-configuration"
	JWKSPath      = "/v1/verification"
)

// IDTokenTTL is how long an ID token is valid, as in Webex's examples.
const IDTokenTTL = 2 * time.Hour

// IDTokenFault is a way the ID tokens the fake issues are wrong, for tests
// of a relying party's checks.
type IDTokenFault int

// ID token faults.
const (
	// IDTokenValid issues correct ID tokens (the default).
	IDTokenValid IDTokenFault = iota
	// IDTokenWrongAudience issues them for another client ID.
	IDTokenWrongAudience
	// IDTokenWrongIssuer issues them under another issuer.
	IDTokenWrongIssuer
	// IDTokenWrongNonce gives them a nonce other than the authorization's.
	IDTokenWrongNonce
	// IDTokenExpired issues them already expired.
	IDTokenExpired
	// IDTokenOtherKey signs them with a key that is not in the JWKS,
	// under the key ID of the one that is.
	IDTokenOtherKey
	// IDTokenMissing leaves id_token out of the token endpoint's answer.
	IDTokenMissing
)

// SetIssuer sets the issuer the fake names in discovery and ID tokens,
// <base URL>/idb. NewServer sets it; a fake served otherwise without it
// derives it from each request's Host.
func (f *Fake) SetIssuer(issuer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.issuer = strings.TrimRight(issuer, "/")
}

// SetIDTokenFault makes every later ID token wrong in the given way, until
// it is called with IDTokenValid.
func (f *Fake) SetIDTokenFault(fault IDTokenFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.idTokenFault = fault
}

// FailDiscoveryNext makes the next n GETs of the discovery document show
// fault; FailKeysNext does the same for the JWKS.
func (f *Fake) FailDiscoveryNext(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.discoveryFaults.queue(n, fault)
}

// FailKeysNext makes the next n GETs of the JWKS show fault.
func (f *Fake) FailKeysNext(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idp.keysFaults.queue(n, fault)
}

// issuerLocked is the issuer for a request: the one set, or derived
// from the request's Host.
func (f *Fake) issuerLocked(r *http.Request) string {
	if f.idp.issuer != "" {
		return f.idp.issuer
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + IssuerPath
}

// discovery is the fields of Webex's discovery document that the fake
// serves truthfully: it has no userinfo endpoint and takes S256 only.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	Scopes                []string `json:"scopes_supported"`
	Claims                []string `json:"claims_supported"`
	GrantTypes            []string `json:"grant_types_supported"`
	AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
	ChallengeMethods      []string `json:"code_challenge_methods_supported"`
}

// serveOIDC serves the discovery document and the JWKS (GET only), with
// their faults and the fake's latency.
func (f *Fake) serveOIDC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	var fault Fault
	var faulted bool
	if r.URL.Path == DiscoveryPath {
		f.idp.stats.Discoveries++
		fault, faulted = f.idp.discoveryFaults.next()
	} else {
		f.idp.stats.KeyFetches++
		fault, faulted = f.idp.keysFaults.next()
	}
	issuer := f.issuerLocked(r)
	latency, stop := f.latency, f.stop
	f.mu.Unlock()

	if latency > 0 && !wait(r, latency, stop) {
		return
	}
	if faulted {
		answerFault(w, r, fault, stop)
		return
	}
	if r.URL.Path == JWKSPath {
		writeJSON(w, http.StatusOK, jwks{Keys: []jwk{publicJWK(keys().signing)}})
		return
	}
	base := strings.TrimSuffix(issuer, IssuerPath)
	writeJSON(w, http.StatusOK, discovery{
		Issuer:                issuer,
		AuthorizationEndpoint: base + AuthorizePath,
		TokenEndpoint:         base + TokenPath,
		JWKSURI:               base + JWKSPath,
		ResponseTypes:         []string{"code"},
		SubjectTypes:          []string{"public"},
		SigningAlgs:           []string{"RS256"},
		Scopes:                []string{"openid", "email", "profile"},
		Claims:                []string{"aud", "sub", "auth_time", "iss", "exp", "iat", "nonce", "email", "email_verified", "name"},
		GrantTypes:            []string{"authorization_code", "refresh_token"},
		// Webex's document says client_secret_basic, its token endpoint
		// takes the credentials in the body too; the fake's only so.
		AuthMethods:      []string{"client_secret_post"},
		ChallengeMethods: []string{"S256"},
	})
}

// signingKey is an RSA key with its key ID.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// keys are the fake's signing key (in its JWKS) and another one (never
// published), made once per process: RSA generation is slow.
var keys = sync.OnceValue(func() struct{ signing, other signingKey } {
	gen := func() signingKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("webexfake: generate RSA key: " + err.Error())
		}
		sum := sha256.Sum256(k.N.Bytes())
		return signingKey{kid: hex.EncodeToString(sum[:8]), key: k}
	}
	return struct{ signing, other signingKey }{gen(), gen()}
})

type jwks struct {
	Keys []jwk `json:"keys"`
}

// jwk is a public key as Webex's verification endpoint lists it.
type jwk struct {
	Kty string `json:"kty"`
	E   string `json:"e"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n"`
}

func publicJWK(k signingKey) jwk {
	b64 := base64.RawURLEncoding.EncodeToString
	return jwk{Kty: "RSA", E: b64(big.NewInt(int64(k.key.E)).Bytes()), Use: "sig", Kid: k.kid, N: b64(k.key.N.Bytes())}
}

// idClaims are an ID token's claims as Webex issues them: the openid
// scope's always, email and name only when the scope asked for them.
type idClaims struct {
	Iss           string `json:"iss"`
	Sub           string `json:"sub"`
	Aud           string `json:"aud"`
	Exp           int64  `json:"exp"`
	Iat           int64  `json:"iat"`
	AuthTime      int64  `json:"auth_time"`
	Nonce         string `json:"nonce,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
}

// idTokenLocked issues the ID token of an exchanged code, spoilt as the
// fault switch says; "" for IDTokenMissing.
func (f *Fake) idTokenLocked(issuer, clientID string, c codeGrant, now time.Time) string {
	fault := f.idp.idTokenFault
	if fault == IDTokenMissing {
		return ""
	}
	f.idp.stats.IDTokens++
	p := f.personLocked(c.person)
	cl := idClaims{Iss: issuer, Sub: p.subject(), Aud: clientID, Iat: now.Unix(), AuthTime: now.Unix(),
		Exp: now.Add(IDTokenTTL).Unix(), Nonce: c.nonce}
	scopes := strings.Fields(c.scope)
	if slices.Contains(scopes, "email") {
		verified := true
		cl.Email, cl.EmailVerified = p.Email, &verified
	}
	if slices.Contains(scopes, "profile") {
		cl.Name = p.DisplayName
	}
	k := keys().signing
	switch fault {
	case IDTokenWrongAudience:
		cl.Aud = "C" + strings.Repeat("0", 64)
	case IDTokenWrongIssuer:
		cl.Iss = strings.TrimSuffix(issuer, IssuerPath) + "/idb-elsewhere"
	case IDTokenWrongNonce:
		cl.Nonce = random("other-nonce-")
	case IDTokenExpired:
		cl.Iat, cl.AuthTime = now.Add(-IDTokenTTL-time.Minute).Unix(), now.Add(-IDTokenTTL-time.Minute).Unix()
		cl.Exp = now.Add(-time.Minute).Unix()
	case IDTokenOtherKey:
		k = signingKey{kid: k.kid, key: keys().other.key}
	}
	return signJWT(k, cl)
}

// signJWT makes a compact JWS (RS256) of claims.
func signJWT(k signingKey, claims any) string {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": k.kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic("webexfake: encode claims: " + err.Error())
	}
	b64 := base64.RawURLEncoding.EncodeToString
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, k.key, crypto.SHA256, sum[:])
	if err != nil {
		panic("webexfake: sign: " + err.Error())
	}
	return signed + "." + b64(sig)
}
