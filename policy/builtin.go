package policy

import (
	"sync"

	"github.com/bccguard/bccguard/config/yamlnode"
)

// builtinPolicy is the policy used when the configuration has no policy
// section. It is written as configuration so that it is loaded, checked and
// explained exactly like a user's; BUILTIN.md shows it (a test keeps the two
// in step).
//
// Why these rules, for a relay that CRM and marketing tools use as their
// smarthost:
//   - A list of addresses in the body or an attachment is a leak that no
//     rewrite repairs, so it is held for a person to look at. 50 distinct
//     addresses is far above a long reply thread and far below an export.
//   - So is a customer-data export without addresses: 50 distinct phone
//     numbers or 50 records (rows of personal data) is no letter, invoice
//     or newsletter; 5 card numbers or 10 IBANs is a payment list (one or
//     two are a customer's own, in a reply).
//   - An encrypted archive or document cannot be inspected at all: held,
//     since "cannot see" is not "nothing there".
//   - Two or more customers at consumer mailbox domains (gmail.com, qq.com,
//     ...) shown to each other are a customer list, whatever their number:
//     one copy per recipient fixes it. (Each such address also counts as an
//     organisation of its own in the domain counts of the next rule.)
//   - External recipients of two or more organisations shown to each other
//     is the incident itself, wherever in the header they show (To:, Cc:,
//     Reply-To:, an X- field, a display name): one copy per recipient fixes
//     it without losing mail. Where a copy cannot be cleaned (the list is in
//     a Subject: or an X- field), the unsafe-copy guard holds it instead.
//   - Ten or more external recipients of one domain are as exposed as those
//     of several domains; a few people at one partner company are ordinary
//     correspondence.
//   - Everything else, such as an ordinary one-to-one message, passes.
//   - A header of which nothing can be made out is held (on_parse_error),
//     since "unreadable" is not "nobody".
const builtinPolicy = `mode: enforce
on_parse_error: quarantine
on_unsafe_copy: quarantine
default_action: pass
rules:
  - name: address-list-in-body
    when: body.addresses >= 50
    action: quarantine
  - name: customer-data-in-body
    when: body.phones >= 50 || body.records >= 50
    action: quarantine
  - name: payment-data-in-body
    when: body.cards >= 5 || body.ibans >= 10
    action: quarantine
  - name: encrypted-attachment
    when: body.unscannable.exists(u, u.reason == "encrypted")
    action: quarantine
  - name: customers-of-consumer-mailboxes
    when: visible.consumer >= 2
    action: explode
  - name: recipients-of-several-domains
    when: visible.external >= 2 && visible.external_domains >= 2
    action: explode
  - name: many-visible-recipients
    when: visible.external >= 10
    action: explode
`

var (
	builtinOnce sync.Once
	builtinP    *Policy
	builtinErr  error
)

// loadBuiltin returns a copy of the built-in policy, compiled once.
func loadBuiltin() (*Policy, error) {
	builtinOnce.Do(func() {
		const file = "built-in policy"
		doc, err := yamlnode.Parse(file, []byte(builtinPolicy))
		if err != nil {
			builtinErr = err
			return
		}
		l := &loader{Decoder: yamlnode.Decoder{File: file}}
		builtinP = l.policy(yamlnode.Deref(doc))
		builtinP.builtin = true
		builtinErr = l.Err()
	})
	if builtinErr != nil {
		return nil, builtinErr
	}
	c := *builtinP
	return &c, nil
}
