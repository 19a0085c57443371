// The alternative users write: authgate.v1.AuthService/Verify in Node.js
// with grpc-js and jose, verifying GoTrue HS256 tokens the way jose's README
// shows (`jwtVerify(token, new TextEncoder().encode(secret))`), or, with
// `imported`, with the key made once (a KeyObject). It answers the same
// Identity (roles, provider, metadata as Structs). Used by
// bench/bench.py --node-jose; not a product.
//
//   node server.mjs 127.0.0.1:50061 documented|imported
import { createSecretKey } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { jwtVerify } from "jose";

const [addr, mode] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync("authgate/v1/auth.proto", {
  includeDirs: [path.join(here, "..", "..", "proto")],
  keepCase: true,
  longs: Number,
  defaults: false,
});
const pkg = grpc.loadPackageDefinition(def);
const raw = process.env.AUTHGATE_ISSUER_NETLIFY_SECRET;
const imported = createSecretKey(Buffer.from(raw));

const value = (v) => {
  if (v === null) return { nullValue: 0 };
  if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
  switch (typeof v) {
    case "boolean": return { boolValue: v };
    case "number": return { numberValue: v };
    case "string": return { stringValue: v };
    default: return { structValue: struct(v) };
  }
};
const struct = (o) => ({ fields: Object.fromEntries(Object.entries(o || {}).map(([k, v]) => [k, value(v)])) });

async function verify(call, callback) {
  try {
    const key = mode === "imported" ? imported : new TextEncoder().encode(raw);
    const { payload } = await jwtVerify(call.request.token, key, { algorithms: ["HS256"] });
    const app = payload.app_metadata || {};
    callback(null, {
      identity: {
        subject: payload.sub,
        email: payload.email || "",
        roles: Array.isArray(app.roles) ? app.roles : [],
        provider: app.provider || "",
        issuer: "netlify",
        expires_at: { seconds: payload.exp, nanos: 0 },
        app_metadata: struct(app),
        user_metadata: struct(payload.user_metadata),
      },
    });
  } catch (e) {
    callback({ code: grpc.status.UNAUTHENTICATED, details: e.code || "invalid token" });
  }
}

const server = new grpc.Server();
server.addService(pkg.authgate.v1.AuthService.service, { verify });
server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.error(`node-jose (${mode}) listening on ${addr}`);
});
