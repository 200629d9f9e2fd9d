// Package views holds converge's templ components and pages. Every page takes a typed view model
// built by the server; views never query the store and import nothing that does.
package views

// Page is what the layout needs on every page.
type Page struct {
	// Title is the page's own title; the layout appends " · converge". Empty means the home page.
	Title string
	// Version is converge's build version, shown in the footer.
	Version string
	// StylesheetURL is the versioned URL of the main stylesheet.
	StylesheetURL string
	// Nav is the current top-level section, used to mark the active navigation link ("home", …).
	Nav string
	// RequestID identifies the request in the logs; shown on error pages.
	RequestID string
}

// HomeView is the home page's view model.
type HomeView struct {
	Page Page
	// Name is the product name.
	Name string
	// Store describes the warehouse, e.g. "embedded ./data" or "http://host:8123".
	Store string
	// EngineVersion is the ClickHouse engine's version, empty when EngineError is set.
	EngineVersion string
	// EngineError is why the engine version could not be read; empty on success.
	EngineError string
}

// ErrorView is the error page's view model.
type ErrorView struct {
	Page Page
	// Status is the HTTP status code, e.g. 404.
	Status int
	// Heading is the short status text, e.g. "Page not found".
	Heading string
	// Message is safe to show to anyone: never an internal error's text for a 5xx.
	Message string
}
