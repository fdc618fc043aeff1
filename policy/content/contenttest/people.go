// Package contenttest makes the exports the content scan is tested on:
// made-up customers (example domains, fictional phone ranges, test card
// and bank numbers) in every format, and the look-alikes that must count
// nothing. Tests of policy/content, the policy and the relay end to end
// share it.
package contenttest

import (
	"fmt"
	"math/big"
	"strconv"
)

// Person is one made-up customer.
type Person struct {
	Name, Email, Phone, Street, City, Postcode, Card, IBAN string
}

// People returns n distinct customers. Phones are in Ofcom's drama range
// (020 7946 0000-0999), which libphonenumber reads as valid London
// numbers; cards are Luhn-valid Visa numbers; IBANs are valid GB ones.
func People(n int) []Person {
	out := make([]Person, n)
	for i := range out {
		out[i] = Person{
			Name:     fmt.Sprintf("%s %s", first[i%len(first)], last[(i/len(first))%len(last)]+suffix(i)),
			Email:    fmt.Sprintf("customer%03d@example.com", i),
			Phone:    fmt.Sprintf("+44 20 7946 %04d", i%1000),
			Street:   fmt.Sprintf("%d High Street", 1+i%300),
			City:     cities[i%len(cities)],
			Postcode: fmt.Sprintf("SW1A %d%s", i%10, string(rune('A'+i%26))+"B"),
			Card:     Card(i),
			IBAN:     IBAN(i),
		}
	}
	return out
}

func suffix(i int) string {
	if i < len(first)*len(last) {
		return ""
	}
	return "-" + strconv.Itoa(i/(len(first)*len(last)))
}

var (
	first  = []string{"Anna", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Luis"}
	last   = []string{"Adler", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka"}
	cities = []string{"Springfield", "Riverton", "Lakeside", "Hillview", "Brookfield"}
)

// Card is the i-th Luhn-valid Visa test number (16 digits).
func Card(i int) string {
	base := fmt.Sprintf("411111%09d", 100000000+i) // 15 digits
	return base + strconv.Itoa(luhnDigit(base))
}

func luhnDigit(s string) int {
	sum := 0
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if (len(s)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// IBAN is the i-th valid GB IBAN (bank code WEST, sort code 123456).
func IBAN(i int) string {
	bban := fmt.Sprintf("WEST123456%08d", 10000000+i)
	num := ""
	for _, c := range bban + "GB00" {
		if c >= 'A' && c <= 'Z' {
			num += strconv.Itoa(int(c-'A') + 10)
		} else {
			num += string(c)
		}
	}
	n, _ := new(big.Int).SetString(num, 10)
	check := 98 - int(new(big.Int).Mod(n, big.NewInt(97)).Int64())
	return fmt.Sprintf("GB%02d%s", check, bban)
}

// Column is one column of an export: its header and how a person fills it.
type Column struct {
	Header string
	Value  func(Person) string
}

// The usual columns.
var (
	ColName     = Column{"Name", func(p Person) string { return p.Name }}
	ColEmail    = Column{"Email", func(p Person) string { return p.Email }}
	ColPhone    = Column{"Phone", func(p Person) string { return p.Phone }}
	ColStreet   = Column{"Street", func(p Person) string { return p.Street }}
	ColCity     = Column{"City", func(p Person) string { return p.City }}
	ColPostcode = Column{"Postcode", func(p Person) string { return p.Postcode }}
	ColCard     = Column{"Card", func(p Person) string { return p.Card }}
	ColIBAN     = Column{"IBAN", func(p Person) string { return p.IBAN }}
)

// OrderExport is the columns of the incident's order export: names,
// emails, phones and shipping addresses.
var OrderExport = []Column{ColName, ColEmail, ColPhone, ColStreet, ColCity, ColPostcode}

// NameAddress is a table of names and addresses without emails or phones.
var NameAddress = []Column{ColName, ColStreet, ColCity, ColPostcode}

// Table is a header row and the rows of people in the given columns.
func Table(people []Person, cols []Column) [][]string {
	rows := [][]string{headers(cols)}
	for _, p := range people {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.Value(p)
		}
		rows = append(rows, row)
	}
	return rows
}

func headers(cols []Column) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.Header
	}
	return h
}

// Catalogue is a product list: SKUs, EAN-13 codes, prices, stock and
// tracking numbers. It holds no personal data.
func Catalogue(n int) [][]string {
	rows := [][]string{{"SKU", "Product name", "EAN", "Price", "Stock", "Tracking"}}
	for i := range n {
		ean := fmt.Sprintf("400638%06d", 100000+i)
		ean += strconv.Itoa(eanDigit(ean))
		rows = append(rows, []string{
			fmt.Sprintf("SKU-%05d-%02d", 10000+i, i%97), fmt.Sprintf("Garden chair model %d", i), ean,
			fmt.Sprintf("%d.%02d", 10+i%400, i%100), strconv.Itoa(i % 500),
			fmt.Sprintf("1Z999AA1%010d", 1000000000+i*7919),
		})
	}
	return rows
}

func eanDigit(s string) int {
	sum := 0
	for i, c := range s {
		d := int(c - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// NotCards are 16-digit numbers that fail the Luhn check (order and
// account references).
func NotCards(n int) []string {
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		s := fmt.Sprintf("4111%012d", 100000000000+i*7)
		if luhnDigit(s[:15]) != int(s[15]-'0') {
			out = append(out, s[:4]+" "+s[4:8]+" "+s[8:12]+" "+s[12:])
		}
	}
	return out
}
