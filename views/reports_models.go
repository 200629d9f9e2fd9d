package views

// ReportsView is the reports page: the finance pack to download, by month; for admins the
// scheduled reports and their latest runs.
type ReportsView struct {
	Page Page
	// Action is the download URL the form submits to (GET, month and format).
	Action string
	// Months are the months with orders, newest first; Selected is the one preselected.
	Months   []Option
	Selected string
	// Recent are the latest months with direct links.
	Recent []ReportMonth
	// MonthsError says why the months could not be read.
	MonthsError string
	// Currency and TZ: the pack's currency and time zone.
	Currency, TZ string
	// Tables describe the pack's tables.
	Tables []ReportTable

	// Admin: the schedules (reports.schedules) and the recorded runs.
	Admin     bool
	Schedules []ScheduleRow
	Dir       string // reports.dir
	Mail      string // where e-mail goes, or why it does not
	Runs      []ReportRunRow
	RunsError string
}

// ReportMonth is a month with the links to its pack (and the XLSX's manifest).
type ReportMonth struct {
	Label, ZipURL, XLSXURL, ManifestURL string
}

// ReportTable describes one table of a pack.
type ReportTable struct{ Name, Contents string }

// ScheduleRow is one scheduled report.
type ScheduleRow struct {
	Name, Cron, TZ, What, Format, Next, To string
}

// ReportRunRow is one recorded run of a scheduled report.
type ReportRunRow struct {
	Started, Schedule, Trigger, Period, Status, Attempts, EmailedTo, Error string
	// File is the file's name, Path where it is, Size its size and checksum.
	File, Path, Size string
}
