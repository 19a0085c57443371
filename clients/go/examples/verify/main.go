// Command verify calls authgate's Verify from Go (grpc-go).
//
//	verify [-addr 127.0.0.1:50051] [-role admin]... TOKEN
//	# authgate with [tls]: its CA, and (mutual TLS) this service's certificate and key
//	verify -addr authgate:50051 -ca ca.pem -cert orders.pem -key orders-key.pem TOKEN
//
// Prints the identity as JSON and exits 0, or prints the gRPC code and
// authgate's reason (from the google.rpc.ErrorInfo detail) and exits 1.
// The stubs are the module's authgatev1 package (generated from
// proto/authgate/v1/auth.proto; tests/polyglot.rs checks they are current).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	authgatev1 "github.com/authgate/authgate/clients/go/authgatev1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// transport is TLS with the CA bundle at caFile (and this caller's
// certificate for mutual TLS when certFile is set), or plaintext without
// caFile: loopback or a service mesh only, authgate refuses it elsewhere.
func transport(caFile, certFile, keyFile string) (grpc.DialOption, error) {
	if caFile == "" {
		return grpc.WithInsecure(), nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(config)), nil
}

type roles []string

func (r *roles) String() string     { return strings.Join(*r, ",") }
func (r *roles) Set(v string) error { *r = append(*r, v); return nil }

// Verify asks authgate who sent a request, given that request's headers.
func Verify(ctx context.Context, client authgatev1.AuthServiceClient, token string, required []string) (*authgatev1.Identity, error) {
	resp, err := client.Verify(ctx, &authgatev1.VerifyRequest{
		Token: token,
		// A backend would pass its request's headers instead:
		// Headers: map[string]string{"authorization": r.Header.Get("Authorization"), "cookie": r.Header.Get("Cookie")},
		RequiredRoles: required,
	})
	if err != nil {
		return nil, err
	}
	return resp.Identity, nil
}

// Reason is authgate's stable reason for a denial ("" if there is none).
func Reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "authgate gRPC address")
	var required roles
	flag.Var(&required, "role", "required role (repeatable, any-of)")
	caFile := flag.String("ca", "", "TLS: PEM CA bundle that signed authgate's certificate")
	certFile := flag.String("cert", "", "mutual TLS: this caller's PEM certificate chain")
	keyFile := flag.String("key", "", "mutual TLS: this caller's PEM private key")
	flag.Parse()
	security, err := transport(*caFile, *certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tls:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *addr, security, grpc.WithBlock())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(2)
	}
	defer conn.Close()

	id, err := Verify(ctx, authgatev1.NewAuthServiceClient(conn), flag.Arg(0), required)
	if err != nil {
		fmt.Fprintf(os.Stderr, "denied: %s %s: %s\n", strings.ToUpper(codeName(err)), Reason(err), status.Convert(err).Message())
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(map[string]interface{}{
		"subject": id.Subject, "email": id.Email, "roles": id.Roles, "provider": id.Provider,
		"issuer": id.Issuer, "audiences": id.Audiences, "expires_at": id.ExpiresAt.GetSeconds(),
	}, "", "  ")
	fmt.Println(string(out))
}

// codeName spells the gRPC code as the other clients do (UNAUTHENTICATED, ...).
func codeName(err error) string {
	name := status.Code(err).String() // "Unauthenticated", "PermissionDenied"
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}
