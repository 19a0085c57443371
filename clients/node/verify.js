#!/usr/bin/env node
// Call authgate's Verify from Node (@grpc/grpc-js).
//
//   node clients/node/verify.js [--addr 127.0.0.1:50051] [--role admin] TOKEN
//   # authgate with [tls]: its CA, and (mutual TLS) this service's certificate and key
//   node clients/node/verify.js --addr authgate:50051 --ca ca.pem --cert orders.pem --key orders-key.pem TOKEN
//
// Prints the identity as JSON and exits 0, or prints the gRPC code and
// authgate's reason (from the google.rpc.ErrorInfo detail) and exits 1.
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');
const def = protoLoader.loadSync('authgate/v1/auth.proto', {
  includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true,
});
const { AuthService } = grpc.loadPackageDefinition(def).authgate.v1;

// google.rpc.Status and ErrorInfo, to read the reason of a denial.
const rpc = protobuf.Root.fromJSON({ nested: { google: { nested: {
  protobuf: { nested: { Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } } } },
  rpc: { nested: {
    Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 },
                        details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } },
    ErrorInfo: { fields: { reason: { type: 'string', id: 1 }, domain: { type: 'string', id: 2 },
                           metadata: { keyType: 'string', type: 'string', id: 3 } } },
  } },
} } } });

function reasonOf(err) {
  const [bin] = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  if (!bin) return '';
  const status = rpc.lookupType('google.rpc.Status').decode(bin);
  const info = status.details.find((d) => d.type_url.endsWith('/google.rpc.ErrorInfo'));
  return info ? rpc.lookupType('google.rpc.ErrorInfo').decode(info.value).reason : '';
}

/**
 * Channel credentials: TLS with `ca` (PEM path), plus this caller's
 * certificate and key for mutual TLS; plaintext without `ca` (loopback or a
 * service mesh only: authgate refuses plaintext elsewhere).
 */
function credentials({ ca, cert, key } = {}) {
  if (!ca) return grpc.credentials.createInsecure();
  const read = (p) => (p ? fs.readFileSync(p) : null);
  return grpc.credentials.createSsl(read(ca), read(key), read(cert));
}

/** Resolves with the Identity, or rejects with {code, reason, message}. */
function verify(addr, request, tls) {
  const client = new AuthService(addr, credentials(tls));
  return new Promise((resolve, reject) => {
    client.Verify(request, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err) reject({ code: grpc.status[err.code], reason: reasonOf(err), message: err.details });
      else resolve(res.identity);
    });
  });
}

async function main(argv) {
  let addr = '127.0.0.1:50051';
  const roles = [];
  const tls = {};
  let token = '';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--addr') addr = argv[++i];
    else if (argv[i] === '--role') roles.push(argv[++i]);
    else if (['--ca', '--cert', '--key'].includes(argv[i])) tls[argv[i].slice(2)] = argv[++i];
    else token = argv[i];
  }
  try {
    // A backend would pass its request's headers instead:
    //   verify(addr, { headers: { authorization: req.headers.authorization, cookie: req.headers.cookie } })
    const identity = await verify(addr, { token, required_roles: roles }, tls);
    console.log(JSON.stringify(identity, null, 2));
    return 0;
  } catch (d) {
    console.error(`denied: ${d.code} ${d.reason}: ${d.message}`);
    return 1;
  }
}

if (require.main === module) main(process.argv.slice(2)).then((rc) => process.exit(rc));
module.exports = { verify, credentials };
