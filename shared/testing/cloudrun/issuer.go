package cloudrun

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// GoogleIssuer is the iss claim Google writes into the ID tokens it mints
// for service accounts (Cloud Scheduler, Pub/Sub push, the metadata
// server).
const GoogleIssuer = "https://accounts.google.com"

// TokenLifetime is how long a minted ID token is valid, as Google's.
const TokenLifetime = time.Hour

// maxTokenBytes bounds a token the issuer reads.
const maxTokenBytes = 16 << 10

// Claims are the claims of a Google ID token minted for a service account
// with an audience, as Cloud Scheduler's OIDC token or a Pub/Sub push
// subscription's.
type Claims struct {
	Issuer          string `json:"iss"`
	Audience        string `json:"aud"`
	AuthorizedParty string `json:"azp"`
	Subject         string `json:"sub"`
	Email           string `json:"email"`
	EmailVerified   bool   `json:"email_verified"`
	IssuedAt        int64  `json:"iat"`
	Expires         int64  `json:"exp"`
}

// Issuer stands in for Google's ID token issuer: it holds its own RSA key,
// serves the public half as a JWK set, and a discovery document, at its
// own URL, and mints ID tokens for any service account. Make one with
// NewIssuer.
type Issuer struct {
	// URL is where it serves /.well-known/openid-configuration and
	// /oauth2/v3/certs (Google serves its keys at
	// https://www.googleapis.com/oauth2/v3/certs).
	URL string
	// Now is the clock of minting and verifying (time.Now if nil).
	Now func() time.Time

	key *rsa.PrivateKey
	kid string
	srv *http.Server
}

// NewIssuer makes a signing key and serves the issuer's documents on addr
// (for example 127.0.0.1:0).
func NewIssuer(addr string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the issuer: %w", err)
	}
	kidSum := sha256.Sum256(key.N.Bytes())
	i := &Issuer{URL: "http://" + ln.Addr().String(), key: key, kid: hex.EncodeToString(kidSum[:20])}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.discovery)
	mux.HandleFunc("GET /oauth2/v3/certs", i.certs)
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go i.srv.Serve(ln)
	return i, nil
}

// Close stops serving.
func (i *Issuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return i.srv.Shutdown(ctx)
}

// JWKSURL is the URL of the issuer's public keys.
func (i *Issuer) JWKSURL() string { return i.URL + "/oauth2/v3/certs" }

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// IDClaims are the claims Google mints, now, for the service account email
// and audience (Cloud Scheduler's --oidc-token-audience, a push
// subscription's audience): iss Google, sub and azp the account's numeric
// ID, email verified, valid for TokenLifetime.
func (i *Issuer) IDClaims(audience, email string) Claims {
	now := i.now()
	id := accountID(email)
	return Claims{
		Issuer: GoogleIssuer, Audience: audience, AuthorizedParty: id, Subject: id,
		Email: email, EmailVerified: true,
		IssuedAt: now.Unix(), Expires: now.Add(TokenLifetime).Unix(),
	}
}

// Mint returns an ID token for email and audience, signed with the
// issuer's key, as Cloud Scheduler or a Pub/Sub push subscription sends
// it.
func (i *Issuer) Mint(audience, email string) (string, error) {
	return i.Sign(i.IDClaims(audience, email))
}

// Sign returns c as an RS256 JWT signed with the issuer's key.
func (i *Issuer) Sign(c Claims) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "kid": i.kid, "typ": "JWT"})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	signing := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signing + "." + b64(sig), nil
}

// Errors of Verify. None holds any part of the token.
var (
	ErrMalformed = errors.New("token is not a JWT")
	ErrSignature = errors.New("token signature does not verify with the issuer's key")
	ErrIssuer    = errors.New("token is not issued by Google")
	ErrExpired   = errors.New("token expired or not yet valid")
)

// Verify checks raw's signature against the issuer's key, its issuer and
// its lifetime, and returns its claims. The audience and the e-mail are
// the caller's to check.
func (i *Issuer) Verify(raw string) (Claims, error) {
	if len(raw) > maxTokenBytes {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return Claims{}, ErrMalformed
	}
	var header struct{ Alg, Kid string }
	if err := decodeJSON(parts[0], &header); err != nil {
		return Claims{}, ErrMalformed
	}
	if header.Alg != "RS256" || header.Kid != i.kid {
		return Claims{}, ErrSignature
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrSignature
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&i.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return Claims{}, ErrSignature
	}
	var c Claims
	if err := decodeJSON(parts[1], &c); err != nil {
		return Claims{}, ErrMalformed
	}
	if c.Issuer != GoogleIssuer && c.Issuer != strings.TrimPrefix(GoogleIssuer, "https://") {
		return Claims{}, ErrIssuer
	}
	now := i.now().Unix()
	if now > c.Expires || c.IssuedAt > now+60 {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// discovery serves the OpenID discovery document: Google's issuer, with
// this issuer's key set.
func (i *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                GoogleIssuer,
		"jwks_uri":                              i.JWKSURL(),
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"claims_supported":                      []string{"aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub"},
	})
}

// certs serves the public key as a JWK set.
func (i *Issuer) certs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": i.kid,
		"n": b64(i.key.N.Bytes()),
		"e": b64(big.NewInt(int64(i.key.E)).Bytes()),
	}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(v)
}

func decodeJSON(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	return dec.Decode(v)
}

// accountID is a stable 21-digit numeric ID for a service account, as
// Google puts in sub and azp.
func accountID(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return fmt.Sprintf("1%020d", binary.BigEndian.Uint64(sum[:8])) // a uint64 has at most 20 digits
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
