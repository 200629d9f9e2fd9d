package views

import "strings"

func joinComma(s []string) string { return strings.Join(s, ", ") }

func orDash(s string) string {
	if s == "" {
		return NoData
	}
	return s
}

func polarityText(p string) string {
	switch p {
	case "higher_is_better":
		return "higher"
	case "lower_is_better":
		return "lower"
	}
	return "neither (neutral)"
}
