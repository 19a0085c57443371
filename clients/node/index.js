'use strict';
// authgate client for Node (@grpc/grpc-js): a promise API over Verify and
// Exchange, a typed Denied error whose `reason` is one of `Reason` (read
// from the proto's `enum Reason`, the server's own list), and Express and
// Fastify middleware.
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

/** The proto: shipped in the package (`proto/`), or the repository's. */
function protoDir() {
  for (const d of [path.join(__dirname, 'proto'), path.resolve(__dirname, '..', '..', 'proto')]) {
    if (fs.existsSync(path.join(d, 'authgate', 'v1', 'auth.proto'))) return d;
  }
  throw new Error('authgate/v1/auth.proto not found');
}

const definition = protoLoader.loadSync('authgate/v1/auth.proto', {
  includeDirs: [protoDir()], keepCase: true, longs: Number, defaults: true,
});
const { AuthService } = grpc.loadPackageDefinition(definition).authgate.v1;

/** Every denial reason, `TOKEN_EXPIRED: 'token_expired'`, from the proto. */
const Reason = Object.freeze(Object.fromEntries(
  definition['authgate.v1.Reason'].type.value
    .filter((v) => v.name !== 'REASON_UNSPECIFIED')
    .map((v) => [v.name.slice('REASON_'.length), v.name.slice('REASON_'.length).toLowerCase()]),
));

// google.rpc.Status, ErrorInfo and RetryInfo, to read a denial's details.
const rpc = protobuf.Root.fromJSON({ nested: { google: { nested: {
  protobuf: { nested: {
    Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
  } },
  rpc: { nested: {
    Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 },
                        details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } },
    ErrorInfo: { fields: { reason: { type: 'string', id: 1 }, domain: { type: 'string', id: 2 },
                           metadata: { keyType: 'string', type: 'string', id: 3 } } },
    RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } },
  } },
} } } });

/** A denial: `code` (gRPC status name), `reason` (a `Reason` value, or null), `retryAfter` (seconds or null). */
class Denied extends Error {
  constructor(code, reason, message, retryAfter) {
    super(`${code} ${reason || '-'}: ${message}`);
    this.name = 'Denied';
    this.code = code;
    this.reason = reason;
    this.retryAfter = retryAfter;
  }

  static fromGrpc(err) {
    let reason = null;
    let retryAfter = null;
    const [bin] = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
    if (bin) {
      const status = rpc.lookupType('google.rpc.Status').decode(bin);
      for (const d of status.details) {
        if (d.type_url.endsWith('/google.rpc.ErrorInfo')) {
          const info = rpc.lookupType('google.rpc.ErrorInfo').decode(d.value);
          if (info.domain === 'authgate' && Object.values(Reason).includes(info.reason)) reason = info.reason;
        } else if (d.type_url.endsWith('/google.rpc.RetryInfo')) {
          const retry = rpc.lookupType('google.rpc.RetryInfo').decode(d.value);
          retryAfter = Number(retry.retry_delay ? retry.retry_delay.seconds : 0);
        }
      }
    }
    return new Denied(grpc.status[err.code], reason, err.details || '', retryAfter);
  }
}

/** TLS with `ca` (PEM path), plus `cert`/`key` for mutual TLS; plaintext without `ca`. */
function credentials({ ca, cert, key } = {}) {
  if (!ca) return grpc.credentials.createInsecure();
  const read = (p) => (p ? fs.readFileSync(p) : null);
  return grpc.credentials.createSsl(read(ca), read(key), read(cert));
}

class Client {
  /** `addr` host:port; options `ca`, `cert`, `key`, `callerToken`, `timeoutMs` (5000). */
  constructor(addr, options = {}) {
    this.stub = new AuthService(addr, credentials(options));
    this.timeoutMs = options.timeoutMs || 5000;
    this.metadata = new grpc.Metadata();
    if (options.callerToken) this.metadata.set('authorization', `Bearer ${options.callerToken}`);
  }

  call(method, request) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, this.metadata, { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) reject(Denied.fromGrpc(err));
        else resolve(res);
      });
    });
  }

  /** Resolves with the Identity, or rejects with `Denied`. */
  async verify({ token = '', headers = {}, requiredRoles = [], issuer = '' } = {}) {
    const res = await this.call('Verify', { token, headers, required_roles: requiredRoles, issuer });
    return res.identity;
  }

  /** Resolves with the ExchangeResponse, or rejects with `Denied`. */
  exchange({ token, audience, scopes = [] }) {
    return this.call('Exchange', { subject_token: token, audience, scopes });
  }

  close() {
    this.stub.close();
  }
}

const FORWARDED = ['authorization', 'cookie'];

function denialHttp(err) {
  const byCode = { UNAUTHENTICATED: 401, PERMISSION_DENIED: 403, INVALID_ARGUMENT: 400, RESOURCE_EXHAUSTED: 429 };
  const status = err instanceof Denied ? (byCode[err.code] || 503) : 503;
  const headers = { 'content-type': 'application/json' };
  if (status === 401) headers['www-authenticate'] = 'Bearer error="invalid_token"';
  if (status === 429 || status === 503) headers['retry-after'] = String((err && err.retryAfter) || 1);
  const body = { error: (err && err.reason) || (err && err.code ? String(err.code).toLowerCase() : 'unavailable') };
  return { status, headers, body };
}

function forwarded(headers) {
  const out = {};
  for (const name of FORWARDED) if (headers[name]) out[name] = String(headers[name]);
  return out;
}

/** Express middleware: `req.authgateIdentity`, or 401/403/503 answered here. */
function expressMiddleware(client, { requiredRoles = [] } = {}) {
  return (req, res, next) => {
    client.verify({ headers: forwarded(req.headers), requiredRoles }).then((identity) => {
      req.authgateIdentity = identity;
      next();
    }, (err) => {
      const { status, headers, body } = denialHttp(err);
      res.status(status).set(headers).json(body);
    });
  };
}

/** Fastify `preHandler` hook: `request.authgateIdentity`, or the denial answered here. */
function fastifyHook(client, { requiredRoles = [] } = {}) {
  return async (request, reply) => {
    try {
      request.authgateIdentity = await client.verify({ headers: forwarded(request.headers), requiredRoles });
    } catch (err) {
      const { status, headers, body } = denialHttp(err);
      return reply.code(status).headers(headers).send(body);
    }
    return undefined;
  };
}

module.exports = { Client, Denied, Reason, credentials, expressMiddleware, fastifyHook };
