#!/usr/bin/env python3
"""Verifies tokens minted by authgate's Exchange with PyJWT, fetching the keys
from authgate's /.well-known/jwks.json over HTTP (an implementation
independent of authgate's). Reads [{"token", "aud"}] as JSON on stdin, prints
one JSON result per token: {"ok", "sub", "kid", "act", "scope"} or {"ok": false, "error"}.
Usage: verify_minted.py JWKS_URL ISSUER
"""
import json
import sys

import jwt

jwks_url, issuer = sys.argv[1], sys.argv[2]
client = jwt.PyJWKClient(jwks_url, cache_keys=False)
for item in json.load(sys.stdin):
    try:
        key = client.get_signing_key_from_jwt(item["token"])
        claims = jwt.decode(item["token"], key.key, algorithms=["EdDSA", "ES256", "RS256"],
                            audience=item["aud"], issuer=issuer,
                            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
        print(json.dumps({"ok": True, "sub": claims["sub"], "kid": key.key_id,
                          "act": claims.get("act"), "scope": claims["scope"]}))
    except Exception as e:  # each token's failure is a result, not a crash
        print(json.dumps({"ok": False, "error": type(e).__name__}))
