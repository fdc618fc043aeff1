#!/usr/bin/python3
"""Verify every DKIM signature of a message with dkimpy (Debian's python3-dkim),
a verifier that shares no code with bccguard or go-msgauth.

    /usr/bin/python3 tests/dkimpy/verify.py --dns 127.0.0.1:PORT < message.eml

Keys are looked up with dnspython at the given DNS server (the tests' own
responder on loopback), never in public DNS: dkimpy's dkimverify command has
no key override, so this calls dkim.DKIM.verify with its own dnsfunc.
Prints one line per signature; exits 0 if all verify, 1 if one does not,
2 if the message has none.
"""
import argparse
import sys

import dkim
import dns.resolver


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dns", required=True, help="HOST:PORT of the DNS server")
    args = ap.parse_args()
    host, port = args.dns.rsplit(":", 1)
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [host]
    res.port = int(port)

    def txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        try:
            ans = res.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(ans[0].strings)

    msg = sys.stdin.buffer.read()
    d = dkim.DKIM(msg)
    n = sum(1 for name, _ in d.headers if name.lower() == b"dkim-signature")
    if n == 0:
        print("no DKIM-Signature")
        return 2
    ok = True
    for i in range(n):
        try:
            good = d.verify(idx=i, dnsfunc=txt)
            why = ""
        except dkim.DKIMException as e:
            good, why = False, str(e)
        sig = d.signature_fields if hasattr(d, "signature_fields") else {}
        tags = {k.decode(): v.decode() for k, v in sig.items() if k in (b"d", b"s", b"a")}
        print("signature %d %s: %s %s" % (i, " ".join("%s=%s" % kv for kv in sorted(tags.items())),
                                         "pass" if good else "FAIL", why))
        ok = ok and good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
