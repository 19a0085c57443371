// The authgate-client Node package (clients/node) against a running
// authgate: promise API, typed Denied with the generated Reason, and the
// Express and Fastify middleware driven through their request/response
// contracts. Prints "N passed, M failed"; exits 1 on a failure.
'use strict';
const path = require('path');
const assert = require('assert');
const { Client, Denied, Reason, expressMiddleware, fastifyHook } = require(path.resolve(__dirname, '..', '..', 'clients', 'node'));

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const addr = arg('--addr');
const good = arg('--good');
const forged = arg('--forged');

async function main() {
  const client = new Client(addr);
  const results = [];
  const test = async (name, fn) => {
    try {
      await fn();
      results.push([name, null]);
    } catch (e) {
      results.push([name, e]);
    }
  };
  await test('verify resolves with the identity', async () => {
    const id = await client.verify({ token: good });
    assert.strictEqual(id.subject, '775a5344-0c6d-4dc6-9ac7-d2d646e071ec');
    assert.deepStrictEqual(id.roles, ['member', 'admin']);
  });
  await test('a forged token rejects with Denied(bad_signature)', async () => {
    await assert.rejects(client.verify({ token: forged }), (e) => e instanceof Denied
      && e.code === 'UNAUTHENTICATED' && e.reason === Reason.BAD_SIGNATURE);
  });
  await test('a missing role rejects with insufficient_role', async () => {
    await assert.rejects(client.verify({ token: good, requiredRoles: ['owner'] }),
      (e) => e.code === 'PERMISSION_DENIED' && e.reason === Reason.INSUFFICIENT_ROLE);
  });
  await test('Reason is the server list', async () => {
    assert.strictEqual(Reason.TOKEN_REVOKED, 'token_revoked');
    assert.ok(Object.keys(Reason).length >= 38);
  });
  await test('Express middleware', async () => {
    const run = (headers) => new Promise((resolve) => {
      const req = { headers };
      const res = {
        statusCode: 200, hdrs: {},
        status(c) { this.statusCode = c; return this; },
        set(h) { Object.assign(this.hdrs, h); return this; },
        json(b) { resolve({ status: this.statusCode, headers: this.hdrs, body: b, req }); },
      };
      expressMiddleware(client)(req, res, () => resolve({ status: 200, req }));
    });
    const ok = await run({ authorization: `Bearer ${good}` });
    assert.strictEqual(ok.status, 200);
    assert.strictEqual(ok.req.authgateIdentity.email, 'test@test.com');
    const denied = await run({ cookie: `nf_jwt=${forged}` });
    assert.strictEqual(denied.status, 401);
    assert.strictEqual(denied.body.error, 'bad_signature');
    assert.ok(denied.headers['www-authenticate']);
  });
  await test('Fastify hook', async () => {
    const reply = () => ({ sent: null, code(c) { this.status = c; return this; }, headers(h) { this.h = h; return this; },
      send(b) { this.sent = b; return this; } });
    const request = { headers: { authorization: `Bearer ${good}` } };
    const r1 = reply();
    await fastifyHook(client, { requiredRoles: ['admin'] })(request, r1);
    assert.strictEqual(r1.sent, null);
    assert.strictEqual(request.authgateIdentity.issuer, 'netlify');
    const r2 = reply();
    await fastifyHook(client, { requiredRoles: ['owner'] })({ headers: { authorization: `Bearer ${good}` } }, r2);
    assert.strictEqual(r2.status, 403);
    assert.deepStrictEqual(r2.sent, { error: 'insufficient_role' });
  });
  client.close();
  const failed = results.filter(([, e]) => e);
  for (const [name, e] of results) console.log(`${e ? 'FAIL' : 'ok  '} ${name}${e ? `: ${e.stack || e}` : ''}`);
  console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
}

main();
