// The session-proxy demo app in Go (net/http, standard library only): sign in, who am I, sign out.
//
// It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
// headers from session-proxy (which strips any a client sent), and it changes the session with
// X-Session-* response headers. Run: PORT=3000 go run ., with session-proxy in front.
package main

import (
	"encoding/json"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"unicode/utf16"
)

// html/template escapes every value it writes into the page.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>session-proxy demo (Go)</title></head>
<body><h1>session-proxy demo (Go)</h1>
{{if .SignedIn}}<p id="status">Signed in as <strong id="user">{{.User}}</strong>. Visits this session: <span id="visits">{{.Visits}}</span>.</p>
<p>The session headers this app got (never a cookie):</p>
<table id="headers">
{{range .Headers}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>
{{else}}<p id="status">You are not signed in.</p>
<form method="post" action="/login"><label>Name <input name="name" id="name" autofocus required></label> <button type="submit" id="login">Sign in</button></form>
{{end}}</body></html>
`))

// verifyAssertion says whether to trust this request's X-Session-* headers. Only the proxy can
// reach the app, so yes; issue 14 will check the signed X-Session-Assertion here when
// SESSION_PROXY_JWKS is set.
func verifyAssertion(h http.Header) bool { return true }

// sessionData is the session as session-proxy sent it, nil without one. X-Session-Data (the whole
// map as JSON) is exact for every value, where an X-Session-<Key> header cannot tell the name
// `"Ann"` (sent as it is, being printable ASCII) from the JSON for Ann.
func sessionData(r *http.Request) map[string]any {
	var data map[string]any
	raw := r.Header.Get("X-Session-Data")
	if raw == "" || !verifyAssertion(r.Header) || json.Unmarshal([]byte(raw), &data) != nil {
		return nil
	}
	return data
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
	session := sessionData(r)
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
		"SignedIn": signedIn, "User": user, "Visits": visits, "Headers": headers,
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
