// Verifies tokens minted by authgate's Exchange with the `jose` library,
// fetching keys with createRemoteJWKSet from authgate's JWKS over HTTP.
// Reads [{"token", "aud"}] on stdin; prints one JSON result per token.
// Usage: node tests/node/verify_minted.mjs JWKS_URL ISSUER
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const [jwksUrl, issuer] = process.argv.slice(2);
const JWKS = createRemoteJWKSet(new URL(jwksUrl));
let input = '';
for await (const chunk of process.stdin) input += chunk;
for (const { token, aud } of JSON.parse(input)) {
  try {
    const { payload } = await jwtVerify(token, JWKS, {
      issuer, audience: aud, algorithms: ['EdDSA', 'ES256', 'RS256'], requiredClaims: ['exp', 'iat', 'nbf', 'jti', 'sub'],
    });
    console.log(JSON.stringify({ ok: true, sub: payload.sub, kid: decodeProtectedHeader(token).kid, act: payload.act ?? null, scope: payload.scope }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: e.code ?? e.name }));
  }
}
