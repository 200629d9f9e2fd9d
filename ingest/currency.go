package ingest

import (
	"fmt"
	"strings"
)

// The ISO 4217 currency codes a currency field accepts, embedded (no network).
//
// iso4217Active is ISO 4217 List One (the codes in use) as amended up to 2025: the 181 codes of
// Debian's iso-codes 4.15 (2023), plus ZWG (Zimbabwe Gold, amendment 177, 2024) and XCG
// (Caribbean guilder, amendment 176, 2025), minus the codes withdrawn since, which are in
// iso4217Withdrawn. Fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious metals
// (XAU, XAG, XPD, XPT) and units of account (XBA–XBD, XDR, XSU, XUA) are List One codes and are
// accepted; XTS (testing) and XXX (no currency) are List One codes that no amount is in, and are
// refused with their meaning.
//
// iso4217Withdrawn are codes withdrawn since 2014 (List Three), accepted so that historic
// records keep the currency they were paid in (an order of 2022 in HRK is valid); a metric
// answers in the report currency and names the rows in any other one.
const (
	iso4217Active = `AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD
BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES
KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD
SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU
XUA YER ZAR ZMW ZWG`
	iso4217Withdrawn = `LVL LTL BYR MRO STD VEF CUC HRK SLL ZWL ANG BGN`
)

// iso4217NoAmount are List One codes that are not the currency of any amount.
var iso4217NoAmount = map[string]string{
	"XTS": "XTS is the ISO 4217 code reserved for testing, not a currency an amount is in",
	"XXX": "XXX is the ISO 4217 code for transactions where no currency is involved",
}

// currencies holds every accepted code.
var currencies = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(iso4217Active + " " + iso4217Withdrawn) {
		m[c] = true
	}
	return m
}()

// currencyHints are spellings that are not codes but say which code was meant: a value equal to
// word, or containing symbol.
var currencyHints = []struct{ word, symbol, code string }{
	{"EURO", "€", "EUR"}, {"EUROS", "", "EUR"}, {"POUND", "£", "GBP"}, {"YEN", "", "JPY"}, {"US DOLLAR", "US$", "USD"},
}

// IsCurrency tells whether code is an ISO 4217 currency code an amount may be in (upper case).
func IsCurrency(code string) bool { return currencies[code] }

// checkCurrency validates an upper-cased currency field.
func checkCurrency(field, v string) *FieldError {
	if currencies[v] {
		return nil
	}
	if why, ok := iso4217NoAmount[v]; ok {
		return ferr(field, "bad_currency", "%s", why)
	}
	hint := ""
	for _, h := range currencyHints {
		if v == h.word || h.symbol != "" && strings.Contains(v, h.symbol) {
			hint = fmt.Sprintf("; did you mean %s?", h.code)
			break
		}
	}
	return ferr(field, "bad_currency", "%q is not an ISO 4217 currency code (three letters such as EUR, USD, GBP)%s; map the source's values in the mapping (fields.%s.map)", v, hint, field)
}
