#!/usr/bin/env bash
# Installs the peers the end-to-end tests talk to, from Debian, when missing:
#   postfix  for smtp-sink and smtp-source (independent SMTP client and server)
#   swaks    an independent SMTP client with STARTTLS and AUTH PLAIN/LOGIN
#            (its TLS needs libnet-ssleay-perl, only a Recommends of swaks)
#   python3-dkim  dkimpy, an independent DKIM verifier (with python3-nacl for
#            Ed25519 and python3-dnspython), run by tests/dkimpy/verify.py
#            with Debian's /usr/bin/python3, not whatever python3 is on PATH
#   prometheus  promtool (checks and unit-tests deploy/prometheus/alerts.yml) and
#            the Prometheus server the metrics end-to-end test scrapes bccguard with
#   chromium  headless Chromium, driven (chromedp) by the browser test of the
#            quarantine review pages (tests/e2e/browser_test.go)
#   podman, runc  build and run the container image (tests/container, `make
#            image`) offline: vfs storage, no registry. runc is named because
#            podman would otherwise pull in crun, which fails on these hosts'
#            hybrid cgroups. No recommends: rootful with host networking needs
#            no slirp4netns, uidmap or fuse-overlayfs.
#   libio-socket-ssl-perl, libauthen-sasl-perl  Perl's Net::SMTP (in perl) with
#            STARTTLS and AUTH, the client library many CRM tools are built on
#            (tests/harness/netsmtp.go)
#   libsasl2-modules  PLAIN and LOGIN for Postfix's SASL client, when a
#            throwaway Postfix relays through bccguard with AUTH
#   openssl  verifies webhook signatures the way README's shell lines do
#            (relay/notify's TestOpenSSLVerifiesSignature)
# Idempotent and quick when everything is present. No system MTA is left running:
# postfix is preseeded to "No configuration" and stopped if the package started it.
# No system Prometheus is left running either: the tests start their own.
set -euo pipefail

need=()
# smtp-sink/smtp-source live in /usr/sbin and are not always on a user's PATH.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have smtp-sink   || need+=(postfix)
have smtp-source || { [[ " ${need[*]-} " == *" postfix "* ]] || need+=(postfix); }
have swaks       || need+=(swaks)
perl -MNet::SSLeay -e 1 >/dev/null 2>&1 || need+=(libnet-ssleay-perl)
have_dkimpy() { /usr/bin/python3 -c 'import dkim, nacl, dns.resolver' >/dev/null 2>&1; }
have_dkimpy || need+=(python3-dkim)
{ have promtool && have prometheus; } || need+=(prometheus)
have chromium    || need+=(chromium)
have podman      || need+=(podman)
have runc        || need+=(runc)
have_netsmtp() { /usr/bin/perl -MNet::SMTP -MIO::Socket::SSL -MAuthen::SASL -e 1 >/dev/null 2>&1; }
/usr/bin/perl -MIO::Socket::SSL -e 1 >/dev/null 2>&1 || need+=(libio-socket-ssl-perl)
/usr/bin/perl -MAuthen::SASL -e 1 >/dev/null 2>&1 || need+=(libauthen-sasl-perl)
have_saslplain() { compgen -G '/usr/lib/*/sasl2/libplain.so*' >/dev/null && compgen -G '/usr/lib/*/sasl2/liblogin.so*' >/dev/null; }
have_saslplain || need+=(libsasl2-modules)

have openssl     || need+=(openssl)

if [ "${#need[@]}" -eq 0 ]; then
	echo "install-test-deps: smtp-sink, smtp-source, swaks (with TLS), Net::SMTP (with TLS and AUTH), SASL PLAIN/LOGIN, prometheus, promtool, python3-dkim, chromium, podman, runc, openssl are present"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		echo "install-test-deps: need root (or sudo) to install: ${need[*]}" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-test-deps: installing ${need[*]}"
if [[ " ${need[*]} " == *" postfix "* ]]; then
	# Before the package is installed, so that its postinst configures no MTA.
	echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
	echo "postfix postfix/mailname string localhost" | "${sudo[@]}" debconf-set-selections
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

if [[ " ${need[*]} " == *" postfix "* ]]; then
	# "No configuration" should leave postfix stopped; make sure of it so that
	# no system MTA holds port 25 or delivers anything during the tests.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet postfix 2>/dev/null; then
		"${sudo[@]}" systemctl stop postfix || true
	fi
	if [ -e /var/spool/postfix/pid/master.pid ] || pgrep -x master >/dev/null 2>&1; then
		"${sudo[@]}" postfix stop >/dev/null 2>&1 || true
	fi
fi

if [[ " ${need[*]} " == *" prometheus "* ]]; then
	# The package enables and starts a Prometheus server on :9090; the tests
	# run their own on a free loopback port. Stop the packaged one through its
	# service manager (never by process name: a test's server may be running)
	# and keep it from starting at boot.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		"${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/prometheus ]; then
		"${sudo[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
		command -v update-rc.d >/dev/null 2>&1 && { "${sudo[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true; }
	fi
fi

for b in smtp-sink smtp-source swaks promtool prometheus chromium podman runc openssl; do
	if ! have "$b"; then
		echo "install-test-deps: $b is still missing after installing ${need[*]}" >&2
		exit 1
	fi
done
if ! perl -MNet::SSLeay -e 1 >/dev/null 2>&1; then
	echo "install-test-deps: swaks has no TLS (Net::SSLeay) after installing ${need[*]}" >&2
	exit 1
fi
if ! have_dkimpy; then
	echo "install-test-deps: dkimpy (python3-dkim) is not importable by /usr/bin/python3 after installing ${need[*]}" >&2
	exit 1
fi
if ! have_netsmtp; then
	echo "install-test-deps: Net::SMTP lacks IO::Socket::SSL or Authen::SASL after installing ${need[*]}" >&2
	exit 1
fi
if ! have_saslplain; then
	echo "install-test-deps: no SASL PLAIN/LOGIN modules (libsasl2-modules) after installing ${need[*]}" >&2
	exit 1
fi
echo "install-test-deps: installed ${need[*]}"
