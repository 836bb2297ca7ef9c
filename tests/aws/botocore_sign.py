#!/usr/bin/python3
"""Reference SigV4 signatures from botocore, for src/aws/sigv4_test.cc.

Reads one JSON object on stdin:
  {"method", "url", "headers": [[name, value], ...], "body" (UTF-8 text),
   "region", "service", "access_key", "secret_key", "token" ("" for none),
   "time": "2015-08-30T12:36:00Z", "form_params": [[k, v], ...] (optional)}
and prints one JSON object:
  {"botocore_version", "headers": {"Authorization", "X-Amz-Date",
   "X-Amz-Security-Token"?}, "canonical_request", "string_to_sign",
   "form_body"? (form_params encoded with urllib's RFC 3986 quote)}

Must run under Debian's /usr/bin/python3 with python3-botocore. botocore
1.29 reads the clock in SigV4Auth.add_auth via datetime.datetime.utcnow(), so
the clock is pinned by patching botocore.auth.datetime the way botocore's own
unit tests do (tests/unit/auth/test_signers.py); newer releases read
botocore.auth.get_current_datetime, which is patched too when present.
"""

import datetime
import json
import sys
from unittest import mock
from urllib.parse import quote

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    spec = json.load(sys.stdin)
    now = datetime.datetime.strptime(spec["time"], "%Y-%m-%dT%H:%M:%SZ")

    request = AWSRequest(method=spec["method"], url=spec["url"],
                         data=spec["body"].encode("utf-8"))
    # HTTPHeaders appends on assignment, so repeated names stay repeated.
    for name, value in spec["headers"]:
        request.headers[name] = value

    credentials = Credentials(spec["access_key"], spec["secret_key"],
                              spec["token"] or None)
    signer = botocore.auth.SigV4Auth(credentials, spec["service"],
                                     spec["region"])

    # Record the strings add_auth itself computes, before it adds Authorization.
    recorded = {}
    original_creq = signer.canonical_request
    original_sts = signer.string_to_sign

    def record_creq(req):
        recorded["canonical_request"] = original_creq(req)
        return recorded["canonical_request"]

    def record_sts(req, creq):
        recorded["string_to_sign"] = original_sts(req, creq)
        return recorded["string_to_sign"]

    signer.canonical_request = record_creq
    signer.string_to_sign = record_sts

    patches = []
    if hasattr(botocore.auth, "get_current_datetime"):
        patches.append(mock.patch.object(botocore.auth, "get_current_datetime",
                                         return_value=now))
    datetime_mock = mock.patch("botocore.auth.datetime")
    patches.append(datetime_mock)
    started = [p.start() for p in patches]
    try:
        dt = started[-1]
        dt.datetime.utcnow.return_value = now
        dt.datetime.now.return_value = now
        dt.datetime.strptime = datetime.datetime.strptime
        signer.add_auth(request)
    finally:
        for p in patches:
            p.stop()

    headers = {}
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        if name in request.headers:
            headers[name] = request.headers[name]
    out = {
        "botocore_version": botocore.__version__,
        "headers": headers,
        "canonical_request": recorded["canonical_request"],
        "string_to_sign": recorded["string_to_sign"],
    }
    if "form_params" in spec:
        out["form_body"] = "&".join(
            quote(k, safe="-_.~") + "=" + quote(v, safe="-_.~")
            for k, v in spec["form_params"])
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
