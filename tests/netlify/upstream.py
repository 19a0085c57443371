#!/usr/bin/env python3
"""A backend behind a Netlify signed proxy redirect, protected by authgate.

For every request it passes its incoming headers to authgate's Verify with
require_signed_proxy=True and answers 200 with the identity and the proxy
attestation, or 401/403 with the gRPC code and reason. It appends every
x-nf-sign it receives to --captured. Usage: upstream.py PORT AUTHGATE_ADDR CAPTURED
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
import verify  # noqa: E402

PORT, AUTHGATE, CAPTURED = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Backend(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "x-nf-sign" in headers:
            with open(CAPTURED, "a") as f:
                f.write(headers["x-nf-sign"] + "\n")
        try:
            resp = verify.verify_response(AUTHGATE, headers=headers, require_signed_proxy=True)
            body = {"granted": True, "subject": resp.identity.subject,
                    "proxy": {"site_id": resp.proxy.site_id, "deploy_context": resp.proxy.deploy_context,
                              "lifetime": resp.proxy.expires_at.seconds - resp.proxy.issued_at.seconds}}
            status = 200
        except verify.Denied as d:
            body = {"granted": False, "code": d.code, "reason": d.reason}
            status = 403 if d.code == "PERMISSION_DENIED" else 401
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    verify.stubs()  # generate once, before serving
    ThreadingHTTPServer(("127.0.0.1", PORT), Backend).serve_forever()
