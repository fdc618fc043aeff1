#!/usr/bin/python3
"""Send messages through an SMTP relay with Python's smtplib, as a client
that retries temporary refusals does: a 4xx at MAIL FROM retries the whole
message, a 4xx at RCPT TO retries just the recipients it refused. Used by
tests/e2e/ratelimit_test.go; nothing but the standard library.

    /usr/bin/python3 tests/smtplib/retry_send.py --host 127.0.0.1 --port 2587 \
        --user crm --password-env PW --from news@brand.example \
        --messages 8 --rcpt a@example.net --rcpt b@example.org --marker run1 \
        --deadline 60

Each message has the header "Message-ID: <MARKER-N@brand.example>". On
success it prints one JSON object with what happened and exits 0; if a
message is still not through at the deadline, or a reply is permanent, it
exits 1.
"""

import argparse
import json
import os
import smtplib
import ssl
import sys
import time


def message(args, n):
    return (
        "From: Brand <%s>\r\n"
        "To: %s\r\n"
        "Subject: Offer %d\r\n"
        "Message-ID: <%s-%d@brand.example>\r\n"
        "\r\n"
        "Message %d of the retry test.\r\n" % (args.sender, ", ".join(args.rcpt), n, args.marker, n, n)
    )


def connect(args):
    s = smtplib.SMTP(args.host, args.port, timeout=30)
    s.ehlo("client.example.net")
    if args.user:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
        s.starttls(context=ctx)
        s.ehlo("client.example.net")
        s.login(args.user, os.environ[args.password_env])
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user")
    p.add_argument("--password-env", default="SMTP_PASSWORD")
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--rcpt", action="append", required=True)
    p.add_argument("--messages", type=int, default=1)
    p.add_argument("--marker", required=True)
    p.add_argument("--deadline", type=float, default=60)
    p.add_argument("--pause", type=float, default=0.2, help="seconds to wait after a temporary refusal")
    args = p.parse_args()

    stats = {"sent": 0, "transactions": 0, "mail_deferred": 0, "rcpt_deferred": 0, "codes": []}
    end = time.monotonic() + args.deadline
    s = connect(args)
    for n in range(1, args.messages + 1):
        pending = list(args.rcpt)
        body = message(args, n)
        while pending:
            if time.monotonic() > end:
                print("message %d: still %s pending at the deadline" % (n, pending), file=sys.stderr)
                print(json.dumps(stats))
                return 1
            try:
                stats["transactions"] += 1
                refused = s.sendmail(args.sender, pending, body)
            except smtplib.SMTPSenderRefused as e:
                if e.smtp_code // 100 != 4:
                    raise
                stats["mail_deferred"] += 1
                stats["codes"].append("%d %s" % (e.smtp_code, e.smtp_error.decode()))
                s.rset()
                time.sleep(args.pause)
                continue
            except smtplib.SMTPRecipientsRefused as e:
                codes = {code for code, _ in e.recipients.values()}
                if any(c // 100 != 4 for c in codes):
                    raise
                stats["rcpt_deferred"] += len(e.recipients)
                stats["codes"].extend("%d %s" % (c, m.decode()) for c, m in e.recipients.values())
                s.rset()
                time.sleep(args.pause)
                continue
            except smtplib.SMTPServerDisconnected:
                s = connect(args)
                continue
            # Accepted for the recipients not in refused; the others again.
            for rcpt, (code, msg) in refused.items():
                if code // 100 != 4:
                    raise RuntimeError("%s refused for good: %d %s" % (rcpt, code, msg))
                stats["rcpt_deferred"] += 1
                stats["codes"].append("%d %s" % (code, msg.decode()))
            pending = list(refused)
            if pending:
                time.sleep(args.pause)
        stats["sent"] += 1
    s.quit()
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
