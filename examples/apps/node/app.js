// The session-proxy demo app in Express: sign in, who am I, sign out.
//
// It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
// headers from session-proxy (which strips any a client sent), and it changes the session with
// X-Session-* response headers. Run: PORT=3000 node app.js, with session-proxy in front.
const express = require("express");

const app = express();
app.use(express.urlencoded({ extended: false }));
const FORM = '<p id="status">You are not signed in.</p>\n<form method="post" action="/login">' +
  '<label>Name <input name="name" id="name" autofocus required></label> ' +
  '<button type="submit" id="login">Sign in</button></form>';

// With SESSION_PROXY_JWKS set, the session comes only from the proxy's signed X-Session-Assertion:
// whatever reaches the app some other way can forge plain X-Session-* headers, not a token. jose
// is ES-module only, hence import(); createRemoteJWKSet fetches the JWKS on first use, caches it,
// and refetches (at most every 30 s) when a token names a new kid.
const JWKS_URL = process.env.SESSION_PROXY_JWKS;
const AUDIENCE = process.env.SESSION_PROXY_AUDIENCE || undefined; // aud checked only when set
const jose = JWKS_URL ? import("jose") : null;
const jwks = jose && jose.then((j) => j.createRemoteJWKSet(new URL(JWKS_URL)));

// The `session` claim of a valid X-Session-Assertion (EdDSA signature by a key of the JWKS, iss,
// aud when SESSION_PROXY_AUDIENCE is set, exp), else null: a missing, forged or expired token, or
// a JWKS that cannot be fetched, is anonymous (fail closed).
async function verifyAssertion(headers) {
  const token = headers["x-session-assertion"];
  if (typeof token !== "string") return null;
  try {
    const { payload } = await (await jose).jwtVerify(token, await jwks, {
      issuer: "session-proxy", audience: AUDIENCE, algorithms: ["EdDSA"],
      requiredClaims: ["exp", "session"],
    });
    const { session } = payload;
    return session !== null && typeof session === "object" && !Array.isArray(session) ? session : null;
  } catch {
    return null;
  }
}

// { session, verified }: the session as session-proxy sent it, {} without one. With
// SESSION_PROXY_JWKS set, only a verified assertion counts. Without, X-Session-Data (the whole map
// as JSON) is exact for every value, where an X-Session-<Key> header cannot tell the name `"Ann"`
// (sent as it is, being printable ASCII) from the JSON for Ann.
async function sessionData(req) {
  if (jose) {
    const session = await verifyAssertion(req.headers);
    return session ? { session, verified: true } : { session: {}, verified: false };
  }
  const raw = req.get("X-Session-Data");
  if (raw === undefined) return { session: {}, verified: false };
  try {
    const data = JSON.parse(raw);
    return { session: data !== null && typeof data === "object" ? data : {}, verified: false };
  } catch {
    return { session: {}, verified: false };
  }
}

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
const page = (body) => '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>' +
  'session-proxy demo (Node)</title></head>\n<body><h1>session-proxy demo (Node)</h1>\n' +
  `${body}\n</body></html>\n`;

app.get("/", async (req, res) => {
  const { session: { user, visits: seen }, verified } = await sessionData(req);
  if (typeof user !== "string") return res.type("html").send(page(FORM));
  const visits = (Number.isInteger(seen) ? seen : 0) + 1;
  res.set("X-Session-Set", `visits=${visits}`).type("html").send(page(
    `<p id="status">Signed in as <strong id="user">${escape(user)}</strong>. ` +
    `Visits this session: <span id="visits">${visits}</span>.</p>\n` +
    (verified ? '<p id="assertion">assertion: verified</p>\n' : "") +
    '<p>The session headers this app got (never a cookie):</p>\n<table id="headers">\n' +
    Object.entries(req.headers).filter(([k]) => k.startsWith("x-session-")).sort()
      .map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(v)}</td></tr>\n`).join("") +
    "</table>\n" +
    '<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>'));
});

app.post("/login", (req, res) => {
  const name = String((req.body && req.body.name) || "").trim();
  if (name) {
    // A JSON string, so that a name like `42` stays text; ASCII-only JSON (JSON.stringify keeps
    // non-ASCII, so escape it) is always a legal header value. A new session ID at sign-in
    // defeats session fixation.
    const user = JSON.stringify(name).replace(/[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
    res.append("X-Session-Set", [`user=${user}`, "visits=0"]).set("X-Session-Regenerate", "1");
  }
  res.redirect(303, "/");
});

app.post("/logout", (req, res) => res.set("X-Session-Clear", "1").redirect(303, "/"));

app.listen(Number(process.env.PORT || 3000), "127.0.0.1");
