package policy

// consumerDomains are the big consumer mailbox providers: addresses there
// belong to private people, not to one organisation, so two customers at
// gmail.com shown to each other are a customer list, not a thread with a
// partner company. The policy counts each address at one of them as its
// own organisation (visible.domains, visible.external_domains,
// envelope.domains) and in visible.consumer. The configuration adds to the
// list with policy.consumer_domains; VARIABLES.md lists it (generated).
//
// Maintained by hand: the providers with the most mailboxes per region
// (Google, Microsoft, Yahoo, Apple, AOL, GMX/web.de, Mail.ru, Yandex,
// Tencent, NetEase, Naver/Kakao, Orange, Free, and national ISPs), with the
// country variants that hold many mailboxes. A provider's business domain
// (a company's Google Workspace domain) is the company's, not listed here.
var consumerDomains = []string{
	// Google
	"gmail.com", "googlemail.com",
	// Microsoft
	"outlook.com", "outlook.de", "outlook.fr", "outlook.es", "outlook.it", "outlook.jp",
	"hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es",
	"hotmail.nl", "hotmail.be", "hotmail.com.br", "hotmail.co.jp",
	"live.com", "live.co.uk", "live.fr", "live.de", "live.nl", "live.it", "live.be", "live.com.au",
	"msn.com", "windowslive.com",
	// Yahoo
	"yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.co.jp",
	"yahoo.com.br", "yahoo.co.in", "yahoo.com.au", "yahoo.ca", "ymail.com", "rocketmail.com",
	// Apple
	"icloud.com", "me.com", "mac.com",
	// AOL
	"aol.com", "aol.de", "aol.fr", "aim.com",
	// United Internet
	"gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.com", "gmx.fr", "web.de", "mail.com",
	// Russia
	"mail.ru", "inbox.ru", "list.ru", "bk.ru", "yandex.ru", "yandex.com", "ya.ru", "rambler.ru",
	// China
	"qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sina.cn", "sohu.com", "aliyun.com",
	// Korea, Japan, India
	"naver.com", "daum.net", "hanmail.net", "kakao.com", "nate.com", "docomo.ne.jp", "ezweb.ne.jp",
	"softbank.ne.jp", "rediffmail.com",
	// France
	"orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "neuf.fr", "bbox.fr",
	// Germany, Austria, Switzerland
	"t-online.de", "freenet.de", "arcor.de", "posteo.de", "mailbox.org", "bluewin.ch",
	// Italy, Spain, Portugal
	"libero.it", "virgilio.it", "tiscali.it", "alice.it", "tin.it", "telefonica.net", "sapo.pt",
	// Benelux, Nordics, Central Europe
	"ziggo.nl", "kpnmail.nl", "planet.nl", "telenet.be", "skynet.be", "online.no",
	"seznam.cz", "wp.pl", "o2.pl", "onet.pl", "interia.pl",
	// United Kingdom, Ireland
	"btinternet.com", "sky.com", "virginmedia.com", "talktalk.net", "ntlworld.com", "eircom.net",
	// North America
	"comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
	"charter.net", "earthlink.net", "shaw.ca", "rogers.com", "sympatico.ca", "videotron.ca",
	// Latin America, Oceania
	"uol.com.br", "bol.com.br", "terra.com.br", "bigpond.com", "optusnet.com.au", "xtra.co.nz",
	// Independent providers
	"proton.me", "protonmail.com", "pm.me", "tutanota.com", "tuta.io", "zoho.com", "fastmail.com",
	"hey.com", "gmx.us",
}
