package reports

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// message is an e-mail with one attached file.
type message struct {
	subject, body string
	filename      string
	data          []byte
	date          time.Time
}

// contentTypes of the files reports attach.
var contentTypes = map[string]string{
	".zip":  "application/zip",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".csv":  "text/csv",
}

// validAddress tells whether s is one e-mail address, bare or with a
// display name ("Finance <finance@example.com>").
func validAddress(s string) bool {
	_, err := mail.ParseAddress(s)
	return err == nil
}

// envelope is the bare address of s, for the SMTP envelope.
func envelope(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return s
	}
	return a.Address
}

// rootCAs, when set (tests), are the CAs the server's certificate is checked against.
var rootCAs *x509.CertPool

// sendMail sends msg to the recipients through the server of m, within
// m.Timeout: STARTTLS first when m.StartTLS (and refused when the server
// does not offer it), then AUTH PLAIN when m.User is set.
func sendMail(ctx context.Context, m SMTP, to []string, msg message) error {
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	if m.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s does not offer STARTTLS (smtp.starttls is on: the password and the report would go in clear)", addr)
		}
		if err := c.StartTLS(&tls.Config{ServerName: m.Host, MinVersion: tls.VersionTLS12, RootCAs: rootCAs}); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	}
	if m.User != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp %s offers no authentication (smtp.user is set)", addr)
		}
		if err := c.Auth(smtp.PlainAuth("", m.User, m.Password, m.Host)); err != nil {
			return fmt.Errorf("smtp %s: authenticate as %s: %w", addr, m.User, err)
		}
	}
	if err := c.Mail(envelope(m.From)); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM %s: %w", addr, m.From, err)
	}
	for _, r := range to {
		if err := c.Rcpt(envelope(r)); err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", addr, r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if err := writeMessage(w, m.From, to, msg); err != nil {
		return fmt.Errorf("smtp %s: message: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: message not accepted: %w", addr, err)
	}
	return c.Quit()
}

// writeMessage writes msg as a MIME message: a text part, then the file
// base64-encoded as an attachment.
func writeMessage(w io.Writer, from string, to []string, msg message) error {
	mw := multipart.NewWriter(w)
	var id [12]byte
	_, _ = rand.Read(id[:])
	host := "converge.local"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, h, ok := strings.Cut(a.Address, "@"); ok {
			host = h
		}
	}
	head := "From: " + from + "\r\n" +
		"To: " + strings.Join(to, ", ") + "\r\n" +
		"Subject: " + mime.QEncoding.Encode("utf-8", msg.subject) + "\r\n" +
		"Date: " + msg.date.Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: <" + hex.EncodeToString(id[:]) + "@" + host + ">\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"" + mw.Boundary() + "\"\r\n\r\n"
	if _, err := w.Write([]byte(head)); err != nil {
		return err
	}
	text, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"base64"}})
	if err != nil {
		return err
	}
	if err := writeBase64(text, []byte(msg.body)); err != nil {
		return err
	}
	ct := contentTypes[strings.ToLower(filepath.Ext(msg.filename))]
	if ct == "" {
		ct = "application/octet-stream"
	}
	file, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {mime.FormatMediaType(ct, map[string]string{"name": msg.filename})},
		"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": msg.filename})},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return err
	}
	if err := writeBase64(file, msg.data); err != nil {
		return err
	}
	return mw.Close()
}

// writeBase64 writes data base64-encoded in lines of 76 characters.
func writeBase64(w io.Writer, data []byte) error {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 0 {
		n := min(76, len(enc))
		if _, err := w.Write([]byte(enc[:n] + "\r\n")); err != nil {
			return err
		}
		enc = enc[n:]
	}
	return nil
}
