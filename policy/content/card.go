package content

// Payment card numbers: 13 to 19 digits that pass the Luhn check and
// start with an issuer's range. Both checks are a few lines, so no
// library is used.

// luhn reports whether the digits pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// issuerRanges are the IIN prefixes and lengths of the card networks
// (ISO/IEC 7812 registrations as the networks publish them).
var issuerRanges = []struct {
	lo, hi   int // inclusive prefix range
	digits   int // digits of the prefix
	min, max int // card number lengths
}{
	{4, 4, 1, 16, 19},           // Visa (13-digit Visa is no longer issued)
	{51, 55, 2, 16, 16},         // Mastercard
	{2221, 2720, 4, 16, 16},     // Mastercard 2-series
	{34, 34, 2, 15, 15},         // American Express
	{37, 37, 2, 15, 15},         // American Express
	{6011, 6011, 4, 16, 19},     // Discover
	{644, 649, 3, 16, 19},       // Discover
	{65, 65, 2, 16, 19},         // Discover
	{3528, 3589, 4, 16, 19},     // JCB
	{300, 305, 3, 14, 19},       // Diners Club
	{36, 36, 2, 14, 19},         // Diners Club
	{38, 39, 2, 16, 19},         // Diners Club
	{62, 62, 2, 16, 19},         // UnionPay
	{50, 50, 2, 16, 19},         // Maestro
	{56, 58, 2, 16, 19},         // Maestro
	{63, 63, 2, 16, 19},         // Maestro
	{67, 67, 2, 16, 19},         // Maestro
	{2200, 2204, 4, 16, 19},     // Mir
	{622126, 622925, 6, 16, 19}, // UnionPay/Discover
}

// isCard reports whether the digits are a payment card number. No range
// is shorter than 14 digits, so an EAN-13 or UPC-12 is never one.
func isCard(d []byte) bool {
	if len(d) < 12 || len(d) > 19 || !luhn(d) {
		return false
	}
	same := true
	for _, c := range d[1:] {
		same = same && c == d[0]
	}
	if same {
		return false // 0000 0000 0000 0000 passes Luhn
	}
	for _, r := range issuerRanges {
		p := 0
		for _, c := range d[:r.digits] {
			p = p*10 + int(c-'0')
		}
		if p >= r.lo && p <= r.hi && len(d) >= r.min && len(d) <= r.max {
			return true
		}
	}
	return false
}
