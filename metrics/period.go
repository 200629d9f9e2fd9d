package metrics

import "time"

// PeriodMonths is a name a derived metric's formula may use besides other
// metrics: the length in months of the period a value is for — the bucket
// (clipped to the asked range) for a bucket's value, the whole range for the
// total. A month is 30.436875 days (the Gregorian average), so a 31-day bucket
// is 1.02 months and a year 12. It lets a formula state a rate per month
// whatever the grain (e.g. CAC payback in months at week or year grain).
const PeriodMonths = "period_months"

// periodMonths is the length in months of [start, end) clipped to p's range,
// as calendar days in the report time zone; zero start and end mean the whole
// range.
func periodMonths(p Params, start, end time.Time) float64 {
	from := dateOf(p.From.In(p.TZ))
	lt := p.To.In(p.TZ)
	to := dateOf(lt)
	if lt.Hour() != 0 || lt.Minute() != 0 || lt.Second() != 0 || lt.Nanosecond() != 0 {
		to = to.AddDate(0, 0, 1)
	}
	if !start.IsZero() && start.After(from) {
		from = start
	}
	if !end.IsZero() && end.Before(to) {
		to = end
	}
	days := to.Sub(from).Hours() / 24
	if days < 0 {
		days = 0
	}
	return days / daysPerMonth
}

// dateOf is t's calendar day as a UTC midnight (how buckets are keyed).
func dateOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
