// The session-proxy demo app in Go (net/http, standard library only): sign in, who am I, sign out.
//
// It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
// headers from session-proxy (which strips any a client sent), and it changes the session with
// X-Session-* response headers. Run: PORT=3000 go run ., with session-proxy in front.
package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// html/template escapes every value it writes into the page.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>session-proxy demo (Go)</title></head>
<body><h1>session-proxy demo (Go)</h1>
{{if .SignedIn}}<p id="status">Signed in as <strong id="user">{{.User}}</strong>. Visits this session: <span id="visits">{{.Visits}}</span>.</p>
{{if .Verified}}<p id="assertion">assertion: verified</p>
{{end}}<p>The session headers this app got (never a cookie):</p>
<table id="headers">
{{range .Headers}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>
{{else}}<p id="status">You are not signed in.</p>
<form method="post" action="/login"><label>Name <input name="name" id="name" autofocus required></label> <button type="submit" id="login">Sign in</button></form>
{{end}}</body></html>
`))

// With SESSION_PROXY_JWKS set, the session comes only from the proxy's signed X-Session-Assertion:
// whatever reaches the app some other way can forge plain X-Session-* headers, not a token.
var (
	jwksURL  = os.Getenv("SESSION_PROXY_JWKS")
	audience = os.Getenv("SESSION_PROXY_AUDIENCE") // aud is checked only when this is set
	jwks     = keySet{client: http.Client{Timeout: 5 * time.Second}}
)

// keySet is the proxy's Ed25519 public keys by kid, fetched on first use and again (at most every
// 30 s, so forged kids cannot make the app hammer the proxy) when a token names a kid it lacks:
// that is all a key rotation needs from the app.
type keySet struct {
	client  http.Client
	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

func (s *keySet) key(kid string) ed25519.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok || time.Since(s.fetched) < 30*time.Second {
		return k
	}
	s.fetched = time.Now()
	keys, err := s.fetch()
	if err != nil {
		log.Printf("JWKS %s: %v", jwksURL, err)
		return nil
	}
	s.keys = keys
	return keys[kid]
}

func (s *keySet) fetch() (map[string]ed25519.PublicKey, error) {
	resp, err := s.client.Get(jwksURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var set struct {
		Keys []struct{ Kty, Crv, Kid, X string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys { // ES256 keys are skipped: this app accepts EdDSA only
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if k.Kty == "OKP" && k.Crv == "Ed25519" && err == nil && len(x) == ed25519.PublicKeySize {
			keys[k.Kid] = ed25519.PublicKey(x)
		}
	}
	return keys, nil
}

// verifyAssertion is the `session` claim of a valid X-Session-Assertion (a compact JWS: EdDSA
// signature by a key of the JWKS, iss, aud when SESSION_PROXY_AUDIENCE is set, exp, nbf), nil
// otherwise: a missing, forged or expired token, or a JWKS that cannot be fetched, is anonymous.
func verifyAssertion(h http.Header) map[string]any {
	parts := strings.Split(h.Get("X-Session-Assertion"), ".")
	if len(parts) != 3 {
		return nil
	}
	var head struct{ Alg, Kid string }
	var claims struct {
		Iss      string
		Aud      json.RawMessage // a string or an array of strings
		Exp, Nbf float64
		Session  map[string]any
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || decodePart(parts[0], &head) != nil || head.Alg != "EdDSA" {
		return nil
	}
	key := jwks.key(head.Kid)
	if key == nil || !ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), sig) ||
		decodePart(parts[1], &claims) != nil {
		return nil
	}
	now := float64(time.Now().Unix())
	if claims.Iss != "session-proxy" || claims.Exp <= now || claims.Nbf > now ||
		(audience != "" && !hasAudience(claims.Aud)) {
		return nil
	}
	return claims.Session
}

// decodePart decodes one base64url (unpadded) JSON part of a JWS into v.
func decodePart(part string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func hasAudience(aud json.RawMessage) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == audience
	}
	var many []string
	_ = json.Unmarshal(aud, &many) // not a list of strings: no audience matches
	for _, a := range many {
		if a == audience {
			return true
		}
	}
	return false
}

// sessionData is the session as session-proxy sent it, nil without one, and whether it came from
// a verified assertion. With SESSION_PROXY_JWKS set, only a verified assertion counts. Without,
// X-Session-Data (the whole map as JSON) is exact for every value, where an X-Session-<Key>
// header cannot tell the name `"Ann"` (sent as it is, being printable ASCII) from the JSON for Ann.
func sessionData(r *http.Request) (map[string]any, bool) {
	if jwksURL != "" {
		session := verifyAssertion(r.Header)
		return session, session != nil
	}
	var data map[string]any
	raw := r.Header.Get("X-Session-Data")
	if raw == "" || json.Unmarshal([]byte(raw), &data) != nil {
		return nil, false
	}
	return data, false
}

// asciiJSON is name as a JSON string with everything outside printable ASCII escaped as \uXXXX,
// so it is always a legal header value (encoding/json keeps non-ASCII as UTF-8, and DEL raw).
func asciiJSON(name string) string {
	quoted, _ := json.Marshal(name) // a string always marshals
	var b strings.Builder
	for _, r := range string(quoted) {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
			continue
		}
		for _, unit := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, unit)
		}
	}
	return b.String()
}

func whoAmI(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	session, verified := sessionData(r)
	user, signedIn := session["user"].(string)
	seen, _ := session["visits"].(float64) // JSON numbers decode as float64; 0 when absent
	visits := int(seen) + 1
	var headers [][2]string
	if signedIn {
		w.Header().Set("X-Session-Set", fmt.Sprintf("visits=%d", visits))
		for name, values := range r.Header {
			if strings.HasPrefix(name, "X-Session-") {
				headers = append(headers, [2]string{strings.ToLower(name), values[0]})
			}
		}
		sort.Slice(headers, func(i, j int) bool { return headers[i][0] < headers[j][0] })
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := page.Execute(w, map[string]any{
		"SignedIn": signedIn, "User": user, "Visits": visits, "Headers": headers, "Verified": verified,
	})
	if err != nil {
		log.Print(err)
	}
}

func login(w http.ResponseWriter, r *http.Request) {
	if name := strings.TrimSpace(r.PostFormValue("name")); r.Method == http.MethodPost && name != "" {
		// A JSON string, so that a name like `42` stays text. A new session ID at sign-in
		// defeats session fixation.
		w.Header().Add("X-Session-Set", "user="+asciiJSON(name))
		w.Header().Add("X-Session-Set", "visits=0")
		w.Header().Set("X-Session-Regenerate", "1")
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func logout(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		w.Header().Set("X-Session-Clear", "1")
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func main() {
	http.HandleFunc("/", whoAmI)
	http.HandleFunc("/login", login)
	http.HandleFunc("/logout", logout)
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
