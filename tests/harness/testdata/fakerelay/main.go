// Command fakerelay stands in for bccguard in the harness's own tests, so the
// harness's process handling can be checked without the real relay. It loads
// the config with the real config package (so the configs the harness writes
// are checked too), greets on every listener and discards mail.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/bccguard/bccguard/config"
	"github.com/emersion/go-smtp"
)

type session struct{}

func (session) Reset()                               {}
func (session) Logout() error                        { return nil }
func (session) Mail(string, *smtp.MailOptions) error { return nil }
func (session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (session) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func newSession(*smtp.Conn) (smtp.Session, error)    { return session{}, nil }

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "queue" && os.Args[2] == "list" {
		fmt.Println(`[{"id":"d1","message_id":"m1","state":"deferred","attempts":2,"recipients":[{"addr":"a@example.net"}]}]`)
		return
	}
	if len(os.Args) != 4 || os.Args[1] != "serve" || os.Args[2] != "--config" {
		fmt.Fprintln(os.Stderr, "usage: fakerelay serve --config FILE")
		os.Exit(2)
	}
	// Before anything else, so that a SIGTERM right after start is caught.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	cfg, err := config.Load(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			log.Fatal(err)
		}
		s := smtp.NewServer(smtp.BackendFunc(newSession))
		s.Domain = cfg.Hostname
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Print(err)
			}
		}()
	}
	// Hold some memory so PeakRSS has something to see.
	ballast := make([]byte, 8<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	fmt.Printf(`{"msg":"fakerelay ready","listeners":%d}`+"\n", len(cfg.Listeners))
	<-sig
	fmt.Println(`{"msg":"fakerelay stopping"}`, ballast[len(ballast)-1])
}
