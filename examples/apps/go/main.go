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
	"strconv"
	"strings"
	"unicode/utf16"
)

const form = `<p id="status">You are not signed in.</p>
<form method="post" action="/login"><label>Name <input name="name" id="name" autofocus required></label> <button type="submit" id="login">Sign in</button></form>`

// verifyAssertion says whether to trust this request's X-Session-* headers. Only the proxy can
// reach the app, so yes; issue 14 will check the signed X-Session-Assertion here when
// SESSION_PROXY_JWKS is set.
func verifyAssertion(h http.Header) bool { return true }

// sessionValue reads X-Session-<name>: a printable ASCII string arrives as it is, anything else
// (non-ASCII text, numbers) as ASCII JSON, which a leading quote marks for a string.
func sessionValue(r *http.Request, name string) (string, bool) {
	raw, ok := r.Header["X-Session-"+name]
	if !ok || len(raw) == 0 || !verifyAssertion(r.Header) {
		return "", false
	}
	var s string
	if strings.HasPrefix(raw[0], `"`) && json.Unmarshal([]byte(raw[0]), &s) == nil {
		return s, true
	}
	return raw[0], true
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
		user, ok := sessionValue(r, "User")
		switch {
		case r.URL.Path != "/" || r.Method != http.MethodGet:
			http.NotFound(w, r)
		case !ok:
			page(w, form)
		default:
			n, _ := sessionValue(r, "Visits")
			visits, _ := strconv.Atoi(n) // 0 when absent or not a number
			visits++
			w.Header().Set("X-Session-Set", fmt.Sprintf("visits=%d", visits))
			page(w, fmt.Sprintf(`<p id="status">Signed in as <strong id="user">%s</strong>. Visits this session: <span id="visits">%d</span>.</p>
<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>`, html.EscapeString(user), visits))
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
