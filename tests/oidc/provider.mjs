// A real OpenID provider (npm oidc-provider) for tests/jwks.rs.
//
//   node provider.mjs <port> <keys.json> [rotate]
//
// Serves discovery, /jwks and /token (client_credentials) on 127.0.0.1:<port>
// with issuer http://127.0.0.1:<port>. Signing keys (private JWKs) live in
// <keys.json>: generated on first start (RS256 `rs-1`, ES256 `es-1`, EdDSA
// `ed-1`) and reused on restart; `rotate` prepends a new ES256 key `es-2`
// (kept in the file), which then signs ES256 tokens.
//
// Resource indicators choose the algorithm and audience of the JWT access
// token: https://api.test/{rs256,es256,eddsa} and https://api.test/short
// (ES256, 1 s lifetime). Tokens carry Auth0-style namespaced roles.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, keysPath, mode] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

function privateJwk(type, options, alg, kid) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, kid, use: 'sig' };
}

let keys = existsSync(keysPath) ? JSON.parse(readFileSync(keysPath, 'utf8')) : [
  privateJwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs-1'),
  privateJwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es-1'),
  privateJwk('ed25519', {}, 'EdDSA', 'ed-1'),
];
if (mode === 'rotate' && !keys.some((k) => k.kid === 'es-2')) {
  keys = [privateJwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es-2'), ...keys];
}
writeFileSync(keysPath, JSON.stringify(keys));

const resources = {
  'https://api.test/rs256': ['RS256', 300],
  'https://api.test/es256': ['ES256', 300],
  'https://api.test/eddsa': ['EdDSA', 300],
  'https://api.test/short': ['ES256', 1],
};

const provider = new Provider(issuer, {
  jwks: { keys },
  clients: [{
    client_id: 'backend',
    client_secret: 'backend-secret-0123456789',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  }],
  scopes: ['orders:read', 'orders:write'],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://api.test/es256',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        const entry = resources[resource];
        if (!entry) throw new Provider.errors.InvalidTarget();
        const [alg, ttl] = entry;
        return {
          scope: 'orders:read orders:write',
          audience: resource,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
  extraTokenClaims: () => ({ 'https://authgate.test/roles': ['admin', 'editor'] }),
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = http.createServer(provider.callback());
server.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer, kids: keys.map((k) => k.kid) }));
});
