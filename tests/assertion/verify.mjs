// Node's jose verifies one session assertion the way an app would: the key by `kid` from the
// proxy's JWKS (fetched from the public path), the signature, `iss`, `aud`, `exp`/`nbf` with no
// clock tolerance, and that the `session` claim equals the X-Session-Data the app received.
//
// Reads one JSON object on stdin: {token, jwks_url, issuer, audience, data}. Prints one JSON
// object: {ok: true, claims} or {ok: false, error}. Driven by verify.py.
import { createRemoteJWKSet, jwtVerify } from "jose";
import { isDeepStrictEqual } from "node:util";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { token, jwks_url, issuer, audience, data } = JSON.parse(input);

try {
  // The five lines an app needs (docs/assertion.md):
  const jwks = createRemoteJWKSet(new URL(jwks_url));
  const { payload } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    algorithms: ["EdDSA", "ES256"],
    requiredClaims: ["iat", "nbf", "exp", "sid", "session"],
  });
  if (data !== undefined && !isDeepStrictEqual(payload.session, data)) {
    throw new Error(`session claim ${JSON.stringify(payload.session)} != X-Session-Data ${JSON.stringify(data)}`);
  }
  console.log(JSON.stringify({ ok: true, claims: payload }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: `${e.code ?? e.name}: ${e.message}` }));
}
