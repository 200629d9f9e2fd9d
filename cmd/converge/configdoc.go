package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// keyDocs says what each key of defaults means: units, accepted values,
// what its zero or empty value does. `converge config doc` writes them, with
// each key's default, environment variable and flag, as docs/config.md (make
// config-doc); a test keeps the two lists and that file in step.
var keyDocs = map[string]string{
	"data_dir":                        "Data directory of the embedded store; one process owns it (other commands then go through `converge serve`'s endpoint). Not used with `clickhouse.addr`.",
	"log.level":                       "`debug`, `info`, `warn` or `error`.",
	"log.format":                      "`text` or `json`.",
	"engine.lib":                      "Path to `libchdb.so`, the embedded engine; empty = where `scripts/install-chdb.sh` installs it (`make deps`).",
	"engine.pool":                     "Engine connections serving queries concurrently, 1–64.",
	"engine.max_server_memory":        "Memory cap of the whole embedded engine: bytes, or a size such as `4GiB`, `512MiB`; `0` = half of RAM, at most 16 GiB.",
	"engine.max_query_memory":         "Memory cap of one query (same units); `0` = half of `engine.max_server_memory`.",
	"engine.http_listen":              "Loopback ClickHouse HTTP endpoint of the embedded store while `converge serve` runs, for analysts' tools and other `converge` commands; loopback addresses only; empty turns it off.",
	"engine.http_password":            "Password of the `engine.http_listen` endpoint (user `default`); empty = a random one per start, written to `DATA_DIR/converge-endpoint.json` (mode 0600).",
	"engine.analyst_user":             "Read-only user of the `engine.http_listen` endpoint for analysts' own tools (DBeaver, clickhouse-client, Grafana): readonly=1 whatever it asks, the main database only, and the console's checks (no table of `clickhouse.app_database`, no system table with other sessions' queries, no files or URLs); empty = no such user.",
	"engine.analyst_password":         "Password of `engine.analyst_user`; empty = a random one per start, written to `DATA_DIR/converge-endpoint.json` (mode 0600) for the admin to hand out.",
	"clickhouse.addr":                 "`host:port` of a ClickHouse server (or ClickHouse Cloud) to use instead of the embedded store; empty = the embedded store.",
	"clickhouse.protocol":             "`http` (HTTP(S) interface, port 8123/8443) or `native` (port 9000/9440).",
	"clickhouse.secure":               "TLS to the server (`true`/`false`).",
	"clickhouse.tls_skip_verify":      "Accept a server certificate that does not verify (`true`/`false`); for tests only.",
	"clickhouse.user":                 "User on the server.",
	"clickhouse.password":             "Password of `clickhouse.user`.",
	"clickhouse.database":             "Database holding converge's tables, created if missing (letters, digits, `_`).",
	"clickhouse.app_database":         "Database of converge's own tables (users, sessions, API tokens, audit log, console history, report runs), created if missing; empty = `clickhouse.database` + `_app`. The console, the endpoint's analyst user and metric SQL never read it. Stores from before it existed have those tables moved there by `converge migrate` (and `serve`).",
	"clickhouse.console_user":         "A ClickHouse server user the SQL console runs as (see [cluster.md](cluster.md), \"The console's own user\"): give it SELECT on `clickhouse.database` and the system tables the console reads, nothing on `clickhouse.app_database`. Empty = the console runs as `clickhouse.user` and only converge's own check keeps it out of the app database. Not used by the embedded store.",
	"clickhouse.console_password":     "Password of `clickhouse.console_user`.",
	"clickhouse.cluster":              "Cluster mode: a cluster of the server's `remote_servers` (letters, digits, `_`, `-`, `.`). Migrations then create every table `ON CLUSTER`, replicated through Keeper and sharded behind a `Distributed` table of the same name (see [cluster.md](cluster.md)); needs `clickhouse.addr`, a node of that cluster. Empty = the server alone.",
	"server.addr":                     "Listen address of the dashboard (`serve --addr`).",
	"server.metrics_addr":             "Address of a second listener serving only `GET /metrics` (Prometheus) without authentication, e.g. `127.0.0.1:9464` or a private interface; empty = off. On `server.addr`, `/metrics` needs a token of scope `metrics` (or an admin).",
	"rollups.interval":                "How often `converge serve` folds newly landed facts into the rollups the metric definitions call for (a duration such as `1s`; a load or an event batch also starts a round at once). Pages answer from a rollup when one covers the query, else from raw rows. `0` keeps no rollups up to date: every query reads raw rows.",
	"server.finish_timeout":           "How long a metric query whose dashboard widget ran out of its time budget goes on in the background, a duration such as `10m`; its answer is cached, so the next view shows it. Callers of the same query at once share one computation. `0`: a query stops with its widget.",
	"server.tile_timeout":             "Time budget of each dashboard widget, a duration such as `8s`; a widget over it shows an error while the page renders.",
	"metrics.dir":                     "Analysts' folder of metric definitions (`*.sql`), picked up without a restart; empty = the built-in metrics only.",
	"identity.source_priority":        "Comma-separated sources whose ids become the canonical customer id first, e.g. `shop,crm`; empty = the record seen first.",
	"report.tz":                       "IANA time zone buckets and dates are reported in, e.g. `Europe/Berlin`.",
	"report.currency":                 "ISO 4217 code of the report currency, e.g. `EUR`: money metrics answer in it, and name the rows in any other currency they leave out (there are no exchange rates).",
	"report.week_start":               "First day of a week: `monday` or `sunday`.",
	"report.fiscal_year_start":        "First month of the fiscal year, 1–12: quarters and years start there.",
	"report.default_margin":           "Gross margin assumed where an order's cost is unknown, a fraction between 0 and 1 (`0.30` = 30 %).",
	"auth.bootstrap_email":            "The first admin, created by `converge serve` with a random password (logged once) when there are no users.",
	"auth.session_idle":               "A session ends this long after its last request (duration, e.g. `2h`).",
	"auth.session_absolute":           "A session ends this long after sign-in, whatever its use (at most `720h`).",
	"auth.cookie_secure":              "The session cookie's Secure flag: `auto` (set on TLS requests and when the server does not listen on loopback), `always` or `never`.",
	"auth.login_failures_per_account": "Failed sign-ins of one account from one address (within a day, since its last sign-in from there) before that address waits to try the account again (429): 1 s after the latest failure, doubled with each further one, at most `auth.login_window`. Four times as many from all addresses make the account wait so, except from addresses it signed in from within 30 days. Other accounts are never limited by them (see package access, limit.go).",
	"auth.login_failures_per_ip":      "Failed sign-ins naming accounts that do not exist, from one address within `auth.login_window`, before that address is refused for such accounts and for wrong passwords (429); a correct password still signs in.",
	"auth.login_window":               "The longest wait of the sign-in limits, and the window `auth.login_failures_per_ip` counts in (duration, at most `24h`).",
	"auth.proxy_header":               "Header carrying the signed-in user's email from an authenticating reverse proxy; empty (default) turns proxy sign-in off.",
	"auth.trusted_proxies":            "Comma-separated IPs or CIDRs whose `auth.proxy_header` is trusted; the header is ignored from anyone else.",
	"reports.dir":                     "Folder scheduled reports write their files (and manifests) to.",
	"reports.schedules":               "The scheduled reports, a list in the config file (README \"Scheduled reports\": name, cron, tz, report or metric, format, to).",
	"reports.tries":                   "Attempts of a scheduled run before it is recorded as failed (1–10).",
	"reports.retry_backoff":           "The wait before a run's second attempt, doubled before each next (duration).",
	"smtp.host":                       "Mail server scheduled reports are sent through; empty: files are written, not mailed.",
	"smtp.port":                       "Port of `smtp.host`.",
	"smtp.user":                       "AUTH PLAIN user; empty: no authentication.",
	"smtp.password":                   "AUTH PLAIN password, only from the environment (`CONVERGE_SMTP_PASSWORD`): in a config file it is refused.",
	"smtp.from":                       "Sender address of report mails.",
	"smtp.to":                         "Recipients (a list, or comma-separated in `CONVERGE_SMTP_TO`); a schedule's `to` overrides it.",
	"smtp.starttls":                   "Require STARTTLS before authenticating and sending (turn off only for a relay on a trusted network).",
	"smtp.timeout":                    "Time limit per message (duration).",
	"console.max_rows":                "Rows the SQL console page shows (1–100,000); more are cut and the page says so.",
	"console.timeout":                 "Time limit of a console query or download (duration).",
	"console.max_memory":              "Memory limit of a console query or download (e.g. `1GiB`).",
	"console.max_result_bytes":        "Bytes of a result the console page holds (64KiB–1GiB); a larger result is refused with a message to download it or add a LIMIT.",
	"console.block_bytes":             "The largest block of rows a console download or `converge export sql` streams (1MiB–1GiB); a download holds one or two at a time.",
	"console.max_bytes_to_read":       "Bytes of tables (uncompressed) a console query may read; the engine refuses one it estimates over this before it starts. 0 = no limit.",
	"console.max_threads":             "Engine threads of a console query; 0 = half the cores.",
	"console.priority":                "Engine priority of console queries (1–1000, larger is lower): they pause while the dashboards' queries (priority 1) run.",
	"console.max_running_per_user":    "Console queries (runs and downloads) one person may run at once; the next is refused at once (429) saying how many run.",
	"console.max_running":             "Console queries running at once in all; on the embedded store at most `engine.pool` − 1 (a lower pool lowers it), so the dashboards and `/readyz` keep a connection.",
	"export.max_rows":                 "Rows a download from the dashboard (console, tables) holds at most; a longer file ends with a TRUNCATED line; 0 = no limit.",
}

// sectionDocs introduce the groups of keys (the part before the first dot).
var sectionDocs = map[string]string{
	"":           "Where the embedded store lives.",
	"log":        "Logging (to standard error).",
	"engine":     "The embedded store: ClickHouse (chDB) inside the process, in `data_dir`. See [engine.md](engine.md).",
	"clickhouse": "A ClickHouse server or cluster instead of the embedded store.",
	"server":     "The dashboard (`converge serve`).",
	"metrics":    "Metric definitions.",
	"rollups":    "Rollups: what the metric definitions call for, kept as facts land (`converge rollups status`).",
	"identity":   "Identity resolution.",
	"report":     "How numbers are reported: time zone, currency, calendar, assumptions.",
	"reports":    "Scheduled reports: the finance pack or a metric export, on a cron schedule (package reports).",
	"smtp":       "The mail server scheduled reports are sent through.",
	"console":    "The analysts' read-only SQL console (`/sql`, `converge sql --read-only`).",
	"export":     "Downloads from the dashboard.",
	"auth":       "Users, sessions and sign-in (package access; README \"Access control\").",
}

// envName is the environment variable of key.
func envName(key string) string {
	return "CONVERGE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// writeConfigDoc writes docs/config.md: every key of defaults with its
// environment variable, flag, default (as `converge config keys` prints it)
// and keyDocs' description, grouped by section.
func writeConfigDoc(w io.Writer) error {
	var missing []string
	sections := map[string][]string{}
	for k := range defaults {
		if keyDocs[k] == "" {
			missing = append(missing, k)
		}
		sec, _, ok := strings.Cut(k, ".")
		if !ok {
			sec = ""
		}
		sections[sec] = append(sections[sec], k)
	}
	for k := range keyDocs {
		if _, ok := defaults[k]; !ok {
			missing = append(missing, k+" (documented, but not a key)")
		}
	}
	for sec := range sections {
		if _, ok := sectionDocs[sec]; !ok {
			missing = append(missing, "section "+sec+" (sectionDocs)")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("cmd/converge/configdoc.go: no description for %s", strings.Join(missing, ", "))
	}
	flags := map[string][]string{}
	for f, k := range flagKeys {
		flags[k] = append(flags[k], "`--"+f+"`")
	}
	names := make([]string, 0, len(sections))
	for sec := range sections {
		names = append(names, sec)
	}
	sort.Strings(names) // "" (general) first

	b := &strings.Builder{}
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- Generated by `make config-doc` (`converge config doc`) from cmd/converge/config.go and configdoc.go. Do not edit: a test fails when this file differs. -->\n\n")
	b.WriteString("Settings come from, highest precedence first: command-line flags, environment variables\n")
	b.WriteString("(`CONVERGE_` and the key in upper case, dots as underscores), and `converge.yaml` in the working\n")
	b.WriteString("directory (or `--config FILE`), where a key's dots are levels of nesting (`engine.pool: 4` is\n")
	b.WriteString("`engine:` / `  pool: 4`). An unknown key in the file, or an invalid value anywhere, is refused with a\n")
	b.WriteString("message naming the key. `converge config keys` lists the keys, variables and defaults below.\n")
	for _, sec := range names {
		keys := sections[sec]
		sort.Strings(keys)
		title := sec
		if title == "" {
			title = "general"
		}
		fmt.Fprintf(b, "\n## %s\n\n%s\n\n", title, sectionDocs[sec])
		b.WriteString("| key | environment | default | description |\n|---|---|---|---|\n")
		for _, k := range keys {
			name := "`" + k + "`"
			if f := flags[k]; len(f) > 0 {
				slices.Sort(f)
				name += " (" + strings.Join(f, ", ") + ")"
			}
			def := "empty"
			if d := fmt.Sprint(defaults[k]); d != "" {
				def = "`" + d + "`"
			}
			fmt.Fprintf(b, "| %s | `%s` | %s | %s |\n", name, envName(k), def, strings.ReplaceAll(keyDocs[k], "|", `\|`))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (a *app) configDocCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doc",
		Short: "Write the configuration reference as Markdown (docs/config.md: make config-doc)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeConfigDoc(cmd.OutOrStdout())
		},
	}
}
