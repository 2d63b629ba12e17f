// The session-proxy demo app in Go (net/http, standard library only): sign in, who am I, sign out.
//
// It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
// headers from session-proxy (which strips any a client sent), and it changes the session with
// X-Session-* response headers. Run: PORT=3000 go run ., with session-proxy in front.
package main

import (
	"encoding/json"
	"fmt"
	"html"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"unicode/utf16"
)

const form = `<p id="status">You are not signed in.</p>
<form method="post" action="/login"><label>Name <input name="name" id="name" autofocus required></label> <button type="submit" id="login">Sign in</button></form>`

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
// so it is always a legal header value (encoding/json keeps non-ASCII as UTF-8).
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

func page(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>session-proxy demo (Go)</title></head>\n<body><h1>session-proxy demo (Go)</h1>\n%s\n</body></html>\n", body)
}

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		session := sessionData(r)
		user, ok := session["user"].(string)
		switch {
		case r.URL.Path != "/" || r.Method != http.MethodGet:
			http.NotFound(w, r)
		case !ok:
			page(w, form)
		default:
			seen, _ := session["visits"].(float64) // JSON numbers decode as float64; 0 when absent
			visits := int(seen) + 1
			w.Header().Set("X-Session-Set", fmt.Sprintf("visits=%d", visits))
			var rows strings.Builder
			names := make([]string, 0, len(r.Header))
			for name := range r.Header {
				names = append(names, strings.ToLower(name))
			}
			sort.Strings(names)
			for _, name := range names {
				if strings.HasPrefix(name, "x-session-") {
					fmt.Fprintf(&rows, "<tr><th>%s</th><td>%s</td></tr>\n", html.EscapeString(name), html.EscapeString(r.Header.Get(name)))
				}
			}
			page(w, fmt.Sprintf(`<p id="status">Signed in as <strong id="user">%s</strong>. Visits this session: <span id="visits">%d</span>.</p>
<p>The session headers this app got (never a cookie):</p>
<table id="headers">
%s</table>
<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>`, html.EscapeString(user), visits, rows.String()))
		}
	})
	http.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if name := strings.TrimSpace(r.PostFormValue("name")); r.Method == http.MethodPost && name != "" {
			// A JSON string, so that a name like `42` stays text. A new session ID at sign-in
			// defeats session fixation.
			w.Header().Add("X-Session-Set", "user="+asciiJSON(name))
			w.Header().Add("X-Session-Set", "visits=0")
			w.Header().Set("X-Session-Regenerate", "1")
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	http.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("X-Session-Clear", "1")
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
