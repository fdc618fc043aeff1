package content

// IBANs (ISO 13616): a country code, two check digits and a BBAN of the
// country's fixed length, valid when the mod-97 check gives 1. The check
// and the length table are small; the only listed Go module for them is
// an unmaintained snapshot, so they are written here.

// ibanLengths is the full IBAN length per country (SWIFT's IBAN registry).
var ibanLengths = map[[2]byte]int{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28,
	{'B', 'A'}: 20, {'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'I'}: 27,
	{'B', 'R'}: 29, {'B', 'Y'}: 28, {'C', 'H'}: 21, {'C', 'R'}: 22, {'C', 'Y'}: 28,
	{'C', 'Z'}: 24, {'D', 'E'}: 22, {'D', 'J'}: 27, {'D', 'K'}: 18, {'D', 'O'}: 28,
	{'E', 'E'}: 20, {'E', 'G'}: 29, {'E', 'S'}: 24, {'F', 'I'}: 18, {'F', 'K'}: 18,
	{'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22, {'G', 'E'}: 22, {'G', 'I'}: 23,
	{'G', 'L'}: 18, {'G', 'R'}: 27, {'G', 'T'}: 28, {'H', 'N'}: 28, {'H', 'R'}: 21,
	{'H', 'U'}: 28, {'I', 'E'}: 22, {'I', 'L'}: 23, {'I', 'Q'}: 23, {'I', 'S'}: 26,
	{'I', 'T'}: 27, {'J', 'O'}: 30, {'K', 'W'}: 30, {'K', 'Z'}: 20, {'L', 'B'}: 28,
	{'L', 'C'}: 32, {'L', 'I'}: 21, {'L', 'T'}: 20, {'L', 'U'}: 20, {'L', 'V'}: 21,
	{'L', 'Y'}: 25, {'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22, {'M', 'K'}: 19,
	{'M', 'N'}: 20, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'I'}: 28,
	{'N', 'L'}: 18, {'N', 'O'}: 15, {'O', 'M'}: 23, {'P', 'K'}: 24, {'P', 'L'}: 28,
	{'P', 'S'}: 29, {'P', 'T'}: 25, {'Q', 'A'}: 29, {'R', 'O'}: 24, {'R', 'S'}: 22,
	{'R', 'U'}: 33, {'S', 'A'}: 24, {'S', 'C'}: 31, {'S', 'D'}: 18, {'S', 'E'}: 24,
	{'S', 'I'}: 19, {'S', 'K'}: 24, {'S', 'M'}: 27, {'S', 'O'}: 23, {'S', 'T'}: 25,
	{'S', 'V'}: 28, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26, {'U', 'A'}: 29,
	{'V', 'A'}: 22, {'V', 'G'}: 24, {'X', 'K'}: 20, {'Y', 'E'}: 30,
}

// matchIBAN looks for an IBAN starting at b[0] (two capital letters, two
// digits, already checked by the caller): the BBAN may be grouped by
// single spaces. It returns the IBAN without spaces (in out) and the bytes
// of b it spans, or 0.
func matchIBAN(b []byte, out []byte) ([]byte, int) {
	want, ok := ibanLengths[[2]byte{b[0], b[1]}]
	if !ok {
		return nil, 0
	}
	out = out[:0]
	i := 0
	for i < len(b) && len(out) < want {
		c := b[i]
		switch {
		case '0' <= c && c <= '9' || 'A' <= c && c <= 'Z':
			out = append(out, c)
		case 'a' <= c && c <= 'z':
			out = append(out, c-'a'+'A')
		case c == ' ' && i+1 < len(b) && b[i+1] != ' ' && len(out) >= 4:
		default:
			return nil, 0
		}
		i++
	}
	if len(out) != want || i < len(b) && isAlnum(b[i]) || !mod97(out) {
		return nil, 0
	}
	return out, i
}

// mod97 computes the ISO 7064 MOD 97-10 check over the rearranged IBAN.
func mod97(iban []byte) bool {
	r := 0
	step := func(c byte) {
		if c >= 'A' {
			v := int(c-'A') + 10
			r = (r*100 + v) % 97
		} else {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	for _, c := range iban[4:] {
		step(c)
	}
	for _, c := range iban[:4] {
		step(c)
	}
	return r == 1
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
