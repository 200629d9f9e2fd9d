package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/converge-dev/converge/ingest"
	"github.com/converge-dev/converge/ingest/identity"
	"github.com/converge-dev/converge/reports"
	"github.com/converge-dev/converge/warehouse"
)

// Config is converge's whole configuration: converge.yaml (or --config),
// then CONVERGE_* environment variables (a key's dots become underscores:
// engine.pool is CONVERGE_ENGINE_POOL), then flags, each overriding the one
// before. Every key is listed, with its default, in defaults below.
type Config struct {
	DataDir string // data_dir: the embedded store's directory

	LogLevel  string // log.level: debug, info, warn, error
	LogFormat string // log.format: text or json

	EngineLib             string // engine.lib: path to libchdb.so
	EnginePool            int    // engine.pool: chDB connections
	EngineMaxServerMemory int64  // engine.max_server_memory: bytes or a size like 4GiB; 0 = half of RAM (≤ 16 GiB)
	EngineMaxQueryMemory  int64  // engine.max_query_memory: per query; 0 = half of the above
	EngineHTTPListen      string // engine.http_listen: loopback ClickHouse HTTP endpoint while serving; "" = off
	EngineHTTPPassword    string // engine.http_password: its password; "" = a random one per start, in the endpoint file
	EngineAnalystUser     string // engine.analyst_user: the endpoint's read-only user, kept out of converge's own tables; "" = none
	EngineAnalystPassword string // engine.analyst_password: its password; "" = a random one per start, in the endpoint file

	ClickHouse warehouse.Config // clickhouse.*: a ClickHouse server instead of the embedded store

	ServerAddr        string        // server.addr: the dashboard's listen address
	ServerTileTimeout time.Duration // server.tile_timeout: each dashboard widget's time budget
	ServerFinish      time.Duration // server.finish_timeout: how long a query a widget gave up on goes on in the background; 0 = it stops
	RollupsInterval   time.Duration // rollups.interval: how often serve folds new facts into the rollups; 0 = never (raw rows only)
	ServerMetricsAddr string        // server.metrics_addr: a listener serving only /metrics without authentication; "" = off

	IdentityRules identity.Rules // identity.source_priority: comma-separated sources whose ids become canonical first

	MetricsDir string // metrics.dir: the analysts' folder of metric definitions (hot-reloaded); "" = built-ins only

	ReportTZ              *time.Location // report.tz: time zone buckets and dates are reported in
	ReportCurrency        string         // report.currency: ISO code shown with amounts
	ReportWeekStart       time.Weekday   // report.week_start: monday or sunday
	ReportFiscalYearStart time.Month     // report.fiscal_year_start: 1..12
	ReportDefaultMargin   float64        // report.default_margin: gross margin assumed where an order's cost is unknown

	Auth AuthConfig // auth.*: users, sessions, sign-in (see package access)

	Reports          reports.Config // reports.*, smtp.*: scheduled reports (see reports.go)
	ConsoleMaxRows   int            // console.max_rows: rows the SQL console page shows (1..100,000); more are cut, and the page says so
	ConsoleTimeout   time.Duration  // console.timeout: time limit of a console query or download
	ConsoleMaxMemory int64          // console.max_memory: memory limit of a console query or download
	Console          ConsoleConfig  // console.*: the rest of the console's limits
	ExportMaxRows    int            // export.max_rows: rows a download from the dashboard (console, tables) holds at most; 0 = no limit
}

// ConsoleConfig is the console.* part of Config beyond rows, time and memory: what a console
// query may cost, and how many run at once (see warehouse.Console, export.Gate).
type ConsoleConfig struct {
	MaxResultBytes    int64 // console.max_result_bytes: bytes of a result the console page holds
	BlockBytes        int64 // console.block_bytes: the largest block of a console download or export
	MaxBytesToRead    int64 // console.max_bytes_to_read: bytes of tables a console query may read; 0 = no limit
	MaxThreads        int   // console.max_threads: engine threads of a console query; 0 = half the cores
	Priority          int   // console.priority: engine priority of console queries (larger: lower; the application's are 1)
	MaxRunningPerUser int   // console.max_running_per_user: console queries one person may run at once
	MaxRunning        int   // console.max_running: console queries running at once in all (embedded: at most engine.pool − 1)
}

// console is the console's limits as the warehouse takes them.
func (c *Config) console() warehouse.Console {
	return warehouse.Console{MaxRows: c.ConsoleMaxRows, Timeout: c.ConsoleTimeout, MaxMemory: c.ConsoleMaxMemory,
		MaxResultBytes: c.Console.MaxResultBytes, BlockBytes: c.Console.BlockBytes, MaxBytesToRead: c.Console.MaxBytesToRead,
		MaxThreads: c.Console.MaxThreads, Priority: c.Console.Priority}
}

func (cc ConsoleConfig) validate(c *Config) error {
	switch {
	case cc.MaxResultBytes < 64<<10 || cc.MaxResultBytes > 1<<30:
		return fmt.Errorf("console.max_result_bytes: %d is out of range 64KiB..1GiB (the page holds the result, and renders it)", cc.MaxResultBytes)
	case cc.BlockBytes < 1<<20 || cc.BlockBytes > 1<<30:
		return fmt.Errorf("console.block_bytes: %d is out of range 1MiB..1GiB (a download holds one or two blocks at a time)", cc.BlockBytes)
	case cc.MaxBytesToRead < 0:
		return fmt.Errorf("console.max_bytes_to_read: %d is negative (0 means no limit)", cc.MaxBytesToRead)
	case cc.MaxThreads < 0 || cc.MaxThreads > 256:
		return fmt.Errorf("console.max_threads: %d is out of range 0..256 (0: half the cores)", cc.MaxThreads)
	case cc.Priority < 1 || cc.Priority > 1000:
		return fmt.Errorf("console.priority: %d is out of range 1..1000 (a larger number is a lower priority; the application's queries run at 1)", cc.Priority)
	case cc.MaxRunningPerUser < 1:
		return fmt.Errorf("console.max_running_per_user: %d is not positive", cc.MaxRunningPerUser)
	case cc.MaxRunning < cc.MaxRunningPerUser:
		return fmt.Errorf("console.max_running: %d is below console.max_running_per_user (%d)", cc.MaxRunning, cc.MaxRunningPerUser)
	}
	return nil
}

// consoleRunning is how many console queries may run at once, per person and in all:
// console.max_running_per_user and console.max_running, and on the embedded store at most
// engine.pool − 1 in all (at least 1), so that one connection is always left to the
// dashboards and /readyz.
func (c *Config) consoleRunning() (perUser, total int) {
	total = c.Console.MaxRunning
	if c.ClickHouse.Addr == "" {
		total = min(total, max(c.EnginePool-1, 1))
	}
	return min(c.Console.MaxRunningPerUser, total), total
}

// AuthConfig is the auth.* part of Config.
type AuthConfig struct {
	BootstrapEmail     string        // auth.bootstrap_email: the first admin, created by serve when there are no users
	SessionIdle        time.Duration // auth.session_idle: a session ends this long after its last request
	SessionAbsolute    time.Duration // auth.session_absolute: and this long after sign-in (at most 720h)
	CookieSecure       string        // auth.cookie_secure: auto, always or never (see server.AuthConfig)
	FailuresPerAccount int           // auth.login_failures_per_account: failed sign-ins of one account from one address before it waits (access/limit.go)
	FailuresPerIP      int           // auth.login_failures_per_ip: failed sign-ins naming unknown accounts from one address within auth.login_window
	LoginWindow        time.Duration // auth.login_window: the longest wait, and the window of auth.login_failures_per_ip
	ProxyHeader        string        // auth.proxy_header: header of an authenticating reverse proxy with the user's email; "" = off
	TrustedProxies     []string      // auth.trusted_proxies: comma-separated IPs or CIDRs of reverse proxies
}

// defaults lists every key with its default value.
var defaults = map[string]any{
	"data_dir":                        "./data",
	"log.level":                       "info",
	"log.format":                      "text",
	"engine.lib":                      "",
	"engine.pool":                     4,
	"engine.max_server_memory":        "0",
	"engine.max_query_memory":         "0",
	"engine.http_listen":              "127.0.0.1:8124",
	"engine.http_password":            "",
	"engine.analyst_user":             "analyst",
	"engine.analyst_password":         "",
	"clickhouse.addr":                 "",
	"clickhouse.protocol":             "http",
	"clickhouse.secure":               false,
	"clickhouse.tls_skip_verify":      false,
	"clickhouse.user":                 "default",
	"clickhouse.password":             "",
	"clickhouse.database":             "converge",
	"clickhouse.app_database":         "",
	"clickhouse.console_user":         "",
	"clickhouse.console_password":     "",
	"server.addr":                     ":8080",
	"server.tile_timeout":             "8s",
	"server.finish_timeout":           "10m",
	"rollups.interval":                "1s",
	"server.metrics_addr":             "",
	"metrics.dir":                     "",
	"identity.source_priority":        "",
	"report.tz":                       "UTC",
	"report.currency":                 "EUR",
	"report.week_start":               "monday",
	"report.fiscal_year_start":        1,
	"report.default_margin":           "0.30",
	"auth.bootstrap_email":            "admin@localhost",
	"auth.session_idle":               "2h",
	"auth.session_absolute":           "12h",
	"auth.cookie_secure":              "auto",
	"auth.login_failures_per_account": 5,
	"auth.login_failures_per_ip":      20,
	"auth.login_window":               "15m",
	"auth.proxy_header":               "",
	"auth.trusted_proxies":            "",
	"clickhouse.cluster":              "",
	"reports.dir":                     "./reports",
	"reports.schedules":               []any{},
	"reports.tries":                   3,
	"reports.retry_backoff":           "1m",
	"smtp.host":                       "",
	"smtp.port":                       587,
	"smtp.user":                       "",
	"smtp.password":                   "",
	"smtp.from":                       "",
	"smtp.to":                         "",
	"smtp.starttls":                   true,
	"smtp.timeout":                    "30s",
	"console.max_rows":                10000,
	"console.timeout":                 "30s",
	"console.max_memory":              "1GiB",
	"console.max_result_bytes":        "16MiB",
	"console.block_bytes":             "64MiB",
	"console.max_bytes_to_read":       "10GiB",
	"console.max_threads":             0,
	"console.priority":                10,
	"console.max_running_per_user":    2,
	"console.max_running":             3,
	"export.max_rows":                 1000000,
}

// flagKeys binds global and per-command flags to config keys.
var flagKeys = map[string]string{
	"data-dir":        "data_dir",
	"clickhouse-addr": "clickhouse.addr",
	"log-level":       "log.level",
	"addr":            "server.addr",
}

// loadConfig reads the configuration. path is --config; without it
// ./converge.yaml is read when present.
func loadConfig(path string, flags *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("CONVERGE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	file := path
	if file == "" {
		if _, err := os.Stat("converge.yaml"); err == nil {
			file = "converge.yaml"
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
		if err := checkKnownKeys(v, file); err != nil {
			return nil, err
		}
		if v.InConfig("smtp.password") {
			return nil, fmt.Errorf("config %s: smtp.password: set it in the environment (CONVERGE_SMTP_PASSWORD), not in the file", file)
		}
	}
	if flags != nil {
		var err error
		flags.VisitAll(func(f *pflag.Flag) {
			if key, ok := flagKeys[f.Name]; ok && err == nil {
				err = v.BindPFlag(key, f)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return decodeConfig(v)
}

// checkKnownKeys refuses keys of a config file that converge does not know,
// so a typo is not silently ignored.
func checkKnownKeys(v *viper.Viper, file string) error {
	var unknown []string
	for _, k := range v.AllKeys() {
		if _, ok := defaults[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("config %s: unknown key %s (known keys: see `converge config keys`)", file, strings.Join(unknown, ", "))
}

func decodeConfig(v *viper.Viper) (*Config, error) {
	c := &Config{
		DataDir:               v.GetString("data_dir"),
		LogLevel:              v.GetString("log.level"),
		LogFormat:             v.GetString("log.format"),
		EngineLib:             v.GetString("engine.lib"),
		EngineHTTPListen:      v.GetString("engine.http_listen"),
		EngineHTTPPassword:    v.GetString("engine.http_password"),
		EngineAnalystUser:     strings.TrimSpace(v.GetString("engine.analyst_user")),
		EngineAnalystPassword: v.GetString("engine.analyst_password"),
		ServerAddr:            v.GetString("server.addr"),
		ServerMetricsAddr:     strings.TrimSpace(v.GetString("server.metrics_addr")),
		MetricsDir:            v.GetString("metrics.dir"),
		IdentityRules:         identity.Rules{SourcePriority: splitList(v.GetString("identity.source_priority"))},
		ReportCurrency:        strings.ToUpper(v.GetString("report.currency")),
		ClickHouse: warehouse.Config{
			Addr:     v.GetString("clickhouse.addr"),
			Protocol: v.GetString("clickhouse.protocol"),
			User:     v.GetString("clickhouse.user"),
			Password: v.GetString("clickhouse.password"),
			Database: v.GetString("clickhouse.database"),
			Cluster:  strings.TrimSpace(v.GetString("clickhouse.cluster")),

			AppDatabase:     strings.TrimSpace(v.GetString("clickhouse.app_database")),
			ConsoleUser:     strings.TrimSpace(v.GetString("clickhouse.console_user")),
			ConsolePassword: v.GetString("clickhouse.console_password"),
		},
	}
	var errs []error
	intKey := func(key string) int {
		n, err := strconv.Atoi(v.GetString(key))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number", key, v.GetString(key)))
		}
		return n
	}
	boolKey := func(key string) bool {
		b, err := strconv.ParseBool(v.GetString(key))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", key, v.GetString(key)))
		}
		return b
	}
	sizeKey := func(key string) int64 {
		n, err := parseSize(v.GetString(key))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", key, err))
		}
		return n
	}
	c.EnginePool = intKey("engine.pool")
	if d, err := time.ParseDuration(v.GetString("server.tile_timeout")); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("server.tile_timeout: %q is not a positive duration (e.g. 8s)", v.GetString("server.tile_timeout")))
	} else {
		c.ServerTileTimeout = d
	}
	if d, err := time.ParseDuration(v.GetString("rollups.interval")); err != nil || d < 0 || d > 0 && d < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("rollups.interval: %q is not 0 or a duration of at least 100ms (e.g. 1s)", v.GetString("rollups.interval")))
	} else {
		c.RollupsInterval = d
	}
	if d, err := time.ParseDuration(v.GetString("server.finish_timeout")); err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("server.finish_timeout: %q is not a duration of 0 or more (e.g. 10m; 0 stops a query with its widget)", v.GetString("server.finish_timeout")))
	} else {
		c.ServerFinish = d
	}
	if tz, err := time.LoadLocation(v.GetString("report.tz")); err != nil {
		errs = append(errs, fmt.Errorf("report.tz: %q is not an IANA time zone (e.g. Europe/Berlin)", v.GetString("report.tz")))
	} else {
		c.ReportTZ = tz
	}
	switch ws := strings.ToLower(v.GetString("report.week_start")); ws {
	case "monday":
		c.ReportWeekStart = time.Monday
	case "sunday":
		c.ReportWeekStart = time.Sunday
	default:
		errs = append(errs, fmt.Errorf("report.week_start: %q is not monday or sunday", ws))
	}
	if m, err := strconv.ParseFloat(v.GetString("report.default_margin"), 64); err != nil || m <= 0 || m >= 1 {
		errs = append(errs, fmt.Errorf("report.default_margin: %q is not a fraction between 0 and 1 (e.g. 0.30 for 30 %%)", v.GetString("report.default_margin")))
	} else {
		c.ReportDefaultMargin = m
	}
	if m := intKey("report.fiscal_year_start"); m < 1 || m > 12 {
		errs = append(errs, fmt.Errorf("report.fiscal_year_start: %d is not a month 1..12", m))
	} else {
		c.ReportFiscalYearStart = time.Month(m)
	}
	durationKey := func(key string) time.Duration {
		d, err := time.ParseDuration(v.GetString(key))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration (e.g. 2h, 15m)", key, v.GetString(key)))
		}
		return d
	}
	c.Auth = AuthConfig{
		BootstrapEmail:     strings.ToLower(strings.TrimSpace(v.GetString("auth.bootstrap_email"))),
		SessionIdle:        durationKey("auth.session_idle"),
		SessionAbsolute:    durationKey("auth.session_absolute"),
		CookieSecure:       strings.ToLower(v.GetString("auth.cookie_secure")),
		FailuresPerAccount: intKey("auth.login_failures_per_account"),
		FailuresPerIP:      intKey("auth.login_failures_per_ip"),
		LoginWindow:        durationKey("auth.login_window"),
		ProxyHeader:        strings.TrimSpace(v.GetString("auth.proxy_header")),
		TrustedProxies:     splitList(v.GetString("auth.trusted_proxies")),
	}
	c.ConsoleMaxRows = intKey("console.max_rows")
	c.ConsoleTimeout = durationKey("console.timeout")
	c.ConsoleMaxMemory = sizeKey("console.max_memory")
	c.Console = ConsoleConfig{
		MaxResultBytes:    sizeKey("console.max_result_bytes"),
		BlockBytes:        sizeKey("console.block_bytes"),
		MaxBytesToRead:    sizeKey("console.max_bytes_to_read"),
		MaxThreads:        intKey("console.max_threads"),
		Priority:          intKey("console.priority"),
		MaxRunningPerUser: intKey("console.max_running_per_user"),
		MaxRunning:        intKey("console.max_running"),
	}
	c.ExportMaxRows = intKey("export.max_rows")
	c.EngineMaxServerMemory = sizeKey("engine.max_server_memory")
	c.EngineMaxQueryMemory = sizeKey("engine.max_query_memory")
	c.ClickHouse.Secure = boolKey("clickhouse.secure")
	c.ClickHouse.TLSSkipVerify = boolKey("clickhouse.tls_skip_verify")
	c.Reports = reports.Config{
		Dir:     v.GetString("reports.dir"),
		Tries:   intKey("reports.tries"),
		Backoff: durationKey("reports.retry_backoff"),
		SMTP: reports.SMTP{
			Host:     strings.TrimSpace(v.GetString("smtp.host")),
			Port:     intKey("smtp.port"),
			User:     v.GetString("smtp.user"),
			Password: v.GetString("smtp.password"),
			From:     strings.TrimSpace(v.GetString("smtp.from")),
			To:       listKey(v, "smtp.to"),
			StartTLS: boolKey("smtp.starttls"),
			Timeout:  durationKey("smtp.timeout"),
		},
		Currency: c.ReportCurrency, Margin: c.ReportDefaultMargin, WeekStart: c.ReportWeekStart,
		FiscalYearStart: c.ReportFiscalYearStart, TZ: c.ReportTZ, Version: convergeVersion(),
	}
	if c.Reports.Tries < 1 || c.Reports.Tries > 10 {
		errs = append(errs, fmt.Errorf("reports.tries: %d is not 1..10", c.Reports.Tries))
	}
	schedules, err := decodeSchedules(v.Get("reports.schedules"), c.ReportTZ)
	errs = append(errs, err)
	c.Reports.Schedules = schedules
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not one of text, json", c.LogFormat)
	}
	if c.EnginePool < 1 || c.EnginePool > 64 {
		return fmt.Errorf("engine.pool: %d is out of range 1..64", c.EnginePool)
	}
	if c.EngineMaxQueryMemory > 0 && c.EngineMaxServerMemory > 0 && c.EngineMaxQueryMemory > c.EngineMaxServerMemory {
		return fmt.Errorf("engine.max_query_memory (%d) is larger than engine.max_server_memory (%d)", c.EngineMaxQueryMemory, c.EngineMaxServerMemory)
	}
	if c.EngineHTTPListen != "" {
		host, _, err := net.SplitHostPort(c.EngineHTTPListen)
		if err != nil {
			return fmt.Errorf("engine.http_listen: %q is not host:port: %v", c.EngineHTTPListen, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("engine.http_listen: %q is not a loopback address; the embedded endpoint is for this machine only (use a ClickHouse server to share the store)", c.EngineHTTPListen)
		}
	}
	if u := c.EngineAnalystUser; u != "" && (u == "default" || !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`).MatchString(u)) {
		return fmt.Errorf("engine.analyst_user: %q is not a user name other than default (letters, digits, _, ., -)", u)
	}
	if !ingest.IsCurrency(c.ReportCurrency) {
		return fmt.Errorf("report.currency: %q is not an ISO 4217 currency code (e.g. EUR)", c.ReportCurrency)
	}
	if _, _, err := net.SplitHostPort(c.ServerAddr); err != nil {
		return fmt.Errorf("server.addr: %q is not host:port: %v", c.ServerAddr, err)
	}
	if c.ServerMetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.ServerMetricsAddr); err != nil {
			return fmt.Errorf("server.metrics_addr: %q is not host:port: %v", c.ServerMetricsAddr, err)
		}
	}
	if c.ClickHouse.Addr == "" && c.DataDir == "" {
		return errors.New("data_dir: empty; set a data directory for the embedded store or clickhouse.addr for a server")
	}
	if c.DataDir != "" {
		abs, err := filepath.Abs(c.DataDir)
		if err != nil {
			return fmt.Errorf("data_dir: %v", err)
		}
		c.DataDir = abs
	}
	if c.ConsoleMaxRows < 1 || c.ConsoleMaxRows > warehouse.MaxConsoleRows {
		return fmt.Errorf("console.max_rows: %d is out of range 1..%d (the page holds the rows it shows; download a longer result)", c.ConsoleMaxRows, warehouse.MaxConsoleRows)
	}
	if c.ConsoleMaxMemory <= 0 {
		return fmt.Errorf("console.max_memory: %d is not a positive size (e.g. 1GiB)", c.ConsoleMaxMemory)
	}
	if err := c.Console.validate(c); err != nil {
		return err
	}
	if c.ExportMaxRows < 0 {
		return fmt.Errorf("export.max_rows: %d is negative (0 means no limit)", c.ExportMaxRows)
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if err := c.Reports.Validate(); err != nil {
		return err
	}
	wc := c.warehouseConfig()
	return wc.Validate()
}

// warehouseConfig is the warehouse.Config for this configuration.
func (c *Config) warehouseConfig() warehouse.Config {
	w := c.ClickHouse
	if w.Addr == "" {
		w.DataDir = c.DataDir
		w.EngineLib = c.EngineLib
		w.EnginePool = c.EnginePool
		w.MaxServerMemory = c.EngineMaxServerMemory
		w.MaxQueryMemory = c.EngineMaxQueryMemory
		w.User, w.Password = "", ""
		w.ConsoleUser, w.ConsolePassword = "", "" // no users: the boundary is converge's check
	}
	return w
}

// splitList reads a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

var sizeRe = regexp.MustCompile(`^\s*(\d+)\s*(?:([KMGT])I?B?|B)?\s*$`)

// parseSize reads a byte size: 1073741824, 1GiB, 512MiB, 4G (binary units).
func parseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with KiB, MiB, GiB, TiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	shift := map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40}
	if m[2] != "" {
		n <<= shift[m[2][0]]
	}
	return n, nil
}
