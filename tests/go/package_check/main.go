// Command package_check drives clients/go/authgate against a running
// authgate: Verify, a typed *Denied with the proto's Reason, and the
// net/http middleware through httptest. Prints "N passed, M failed".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/authgate/authgate/clients/go/authgate"
	authgatev1 "github.com/authgate/authgate/clients/go/authgatev1"
	"google.golang.org/grpc/codes"
)

func main() {
	addr := flag.String("addr", "", "authgate address")
	good := flag.String("good", "", "a valid token")
	forged := flag.String("forged", "", "a forged token")
	flag.Parse()
	c, err := authgate.Dial(*addr)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	defer c.Close()
	passed, failed := 0, 0
	check := func(name string, err error) {
		if err != nil {
			failed++
			fmt.Printf("FAIL %s: %v\n", name, err)
			return
		}
		passed++
		fmt.Printf("ok   %s\n", name)
	}
	ctx := context.Background()
	check("verify grants", func() error {
		id, err := c.Verify(ctx, &authgatev1.VerifyRequest{Token: *good})
		if err != nil {
			return err
		}
		if id.Subject != "775a5344-0c6d-4dc6-9ac7-d2d646e071ec" {
			return fmt.Errorf("subject %q", id.Subject)
		}
		return nil
	}())
	check("a forged token is a *Denied with REASON_BAD_SIGNATURE", func() error {
		_, err := c.Verify(ctx, &authgatev1.VerifyRequest{Token: *forged})
		var d *authgate.Denied
		if !errors.As(err, &d) || d.Code != codes.Unauthenticated || d.Reason != authgatev1.Reason_REASON_BAD_SIGNATURE {
			return fmt.Errorf("got %v", err)
		}
		return nil
	}())
	handler := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, authgate.IdentityFrom(r.Context()).Email)
	}), "admin")
	serve := func(header, value string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api", nil)
		if header != "" {
			req.Header.Set(header, value)
		}
		handler.ServeHTTP(rec, req)
		return rec
	}
	check("middleware passes the identity on", func() error {
		rec := serve("Authorization", "Bearer "+*good)
		if rec.Code != 200 || rec.Body.String() != "test@test.com" {
			return fmt.Errorf("%d %q", rec.Code, rec.Body.String())
		}
		return nil
	}())
	check("middleware answers 401 with WWW-Authenticate", func() error {
		rec := serve("Cookie", "nf_jwt="+*forged)
		if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" || !strings.Contains(rec.Body.String(), "bad_signature") {
			return fmt.Errorf("%d %v %q", rec.Code, rec.Header(), rec.Body.String())
		}
		return nil
	}())
	check("middleware answers 401 missing_credential", func() error {
		rec := serve("", "")
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), "missing_credential") {
			return fmt.Errorf("%d %q", rec.Code, rec.Body.String())
		}
		return nil
	}())
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
