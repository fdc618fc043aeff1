#!/usr/bin/perl
# Sends one message with Perl's Net::SMTP, the way a CRM built on it does:
# connect, optional STARTTLS (IO::Socket::SSL) and AUTH (Authen::SASL), MAIL,
# one RCPT per recipient, DATA, datasend, dataend, QUIT. Run by
# tests/harness/netsmtp.go with Debian's /usr/bin/perl.
#
#   netsmtp.pl --server HOST:PORT [--starttls --ca-file PEM --tls-name NAME]
#              [--auth-user U --auth-password P [--auth-mech PLAIN|LOGIN]]
#              --from ADDR --to ADDR [--to ADDR ...] [--helo NAME]
#              [--timeout SECONDS] [--characters] < message
#
# The message on stdin is passed to datasend as it is: octets, as Net::SMTP
# requires (it turns bare LF into CRLF and stuffs dots). With --characters
# it is first decoded from UTF-8 into a character string, the mistake a CRM
# makes when it passes text from a database or a "use utf8" template.
# Net::SMTP's transcript goes to stderr; the last line on stdout is
# "OK <reply>" or "FAIL <stage> <code> <reply>", and the exit code 0 or 1.
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use Net::SMTP;

my %o = (timeout => 30, 'auth-mech' => '');
my @to;
GetOptions(\%o, 'server=s', 'starttls', 'ca-file=s', 'tls-name=s', 'auth-user=s',
	'auth-password=s', 'auth-mech=s', 'from=s', 'to=s' => \@to, 'timeout=i', 'helo=s', 'characters')
	or die "usage: see the comment at the top of $0\n";
die "--server, --from and --to are required\n" unless $o{server} && defined $o{from} && @to;
my ($host, $port) = $o{server} =~ /^\[?([^\]]+?)\]?:(\d+)$/ or die "--server must be HOST:PORT\n";

binmode STDIN;
my $msg = do { local $/; <STDIN> };
if ($o{characters}) {
	require Encode;
	$msg = Encode::decode('UTF-8', $msg, Encode::FB_CROAK());
}
binmode STDOUT;

sub fail {
	my ($smtp, $stage) = @_;
	my $code = $smtp ? ($smtp->code // '') : '';
	my $text = $smtp ? join(' ', $smtp->message // '') : ($@ // '');
	$text =~ s/\s+/ /g;
	print "FAIL $stage $code $text\n";
	exit 1;
}

my $smtp = Net::SMTP->new($host, Port => $port, Hello => $o{helo} // 'client.example.com',
	Timeout => $o{timeout}, Debug => 1) or fail(undef, 'connect');
if ($o{starttls}) {
	require IO::Socket::SSL;
	my @verify = $o{'ca-file'}
		? (SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(), SSL_ca_file => $o{'ca-file'},
		   SSL_verifycn_name => $o{'tls-name'} // $host)
		: (SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE());
	$smtp->starttls(@verify) or fail($smtp, 'starttls');
}
if (defined $o{'auth-user'}) {
	require Authen::SASL;
	my $sasl = Authen::SASL->new(
		mechanism => $o{'auth-mech'} || ($smtp->supports('AUTH') // ''),
		callback  => { user => $o{'auth-user'}, pass => $o{'auth-password'}, authname => $o{'auth-user'} },
	);
	$smtp->auth($sasl) or fail($smtp, 'auth');
}
$smtp->mail($o{from}) or fail($smtp, 'mail');
$smtp->to(@to) or fail($smtp, 'rcpt');
$smtp->data() or fail($smtp, 'data');
$smtp->datasend($msg) or fail($smtp, 'datasend');
$smtp->dataend() or fail($smtp, 'dataend');
my $reply = join(' ', $smtp->code, $smtp->message);
$reply =~ s/\s+$//;
$smtp->quit;
print "OK $reply\n";
exit 0;
