#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (run from the repository root:
python3 fuzz/make_seeds.py). Tokens are signed with the secrets the fuzz
targets configure, so seeds reach the checks behind the signature."""
import base64, hashlib, hmac, json, os

USER_SECRET = "fuzz-user-secret-0123456789"
PROXY_SECRET = "fuzz-signed-proxy-secret-0123456789"
ROOT = os.path.join(os.path.dirname(__file__), "corpus")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs(header, payload, secret):
    si = b64(header.encode()) + "." + b64(payload.encode())
    return si + "." + b64(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def field(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def entry(num, k, v):
    return field(num, field(1, k.encode()) + field(2, v.encode()))


user = '{"exp":1800000600,"sub":"u1","email":"a@b.c","app_metadata":{"provider":"email","roles":["member"]}}'
tok = hs('{"alg":"HS256","typ":"JWT","kid":"nf-ident"}', user, USER_SECRET)
sign = hs('{"alg":"HS256"}', '{"iss":"netlify","exp":1800000100,"iat":1799999900,"netlify_id":"s",'
          '"site_url":"https://s.netlify.app","deploy_context":"production"}', PROXY_SECRET)

put("jws", "gotrue", tok)
put("jws", "none", b64(b'{"alg":"none"}') + "." + b64(user.encode()) + ".")
put("jws", "duplicate", hs('{"alg":"HS256"}', '{"iss":"a","iss":"b","exp":1e308}', "x"))
put("jws", "crit", hs('{"alg":"HS256","crit":null}', user, "x"))
put("credential", "bearer", "\nauthorization: Bearer " + tok + "\ncookie: a=1; nf_jwt=x.y.z\nx-forwarded-for: 1.2.3.4, 5.6.7.8")
put("credential", "token", tok + "\nx-nf-sign: a.b.c\nAuthorization: Basic dXNlcg==")
put("forward_auth_headers", "headers", "authorization: Bearer " + tok + "\ncookie: theme=dark; nf_jwt=" + tok
    + "; nf_refresh=r\nx-forwarded-for: 198.51.100.1, 203.0.113.2\nx-note: caf\xc3\xa9")
put("nf_sign", "valid", sign)
put("nf_sign", "addon", hs('{"alg":"HS256"}', '{"iss":"netlify","exp":1800000100,"iat":1799999900,"id":"x"}', PROXY_SECRET))
put("keyset", "jwks", json.dumps({"keys": [
    {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k", "alg": "EdDSA"},
    {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "e"},
    {"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}))
put("keyset", "pem", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n")
put("config", "full", '[server]\ngrpc_addr = "127.0.0.1:0"\nhttp_addr = "127.0.0.1:0"\nmax_in_flight = 64\n'
    '[edge]\nroles = ["member"]\nsigned_proxy = "optional"\n[edge.routes.admin]\nroles = ["admin"]\n'
    '[signed_proxy]\nsecret = "0123456789abcdef0123"\n[[issuers]]\nname = "site"\nsecret = "0123456789abcdef0123"\n'
    '[[issuers]]\nname = "hosted"\nkind = "netlify_identity"\nsite_url = "https://example.netlify.app"\n')
put("config", "errors", '[edge]\nsigned_proxy = "Required"\n[edge.routes.Bad]\nx = 1\n[[issuers]]\nname = "Bad Name"\nsecret = "short"\n')
# CheckRequest{attributes{request{http{headers}}, context_extensions}}, and the header_map form.
http = b"".join(entry(3, k, v) for k, v in [("authorization", "Bearer " + tok), ("cookie", "a=1; nf_jwt=x"), ("x-forwarded-for", "1.2.3.4")])
put("check_request", "bearer", field(1, field(4, field(2, http)) + entry(10, "route", "admin") + entry(10, "exchange_audience", "")))
header_map = field(13, b"".join(field(1, field(1, k.encode()) + field(3, v.encode())) for k, v in [("authorization", "Bearer " + tok), ("x-nf-sign", sign)]))
put("check_request", "raw_headers", field(1, field(4, field(2, header_map)) + entry(10, "signed_proxy", "required")))
