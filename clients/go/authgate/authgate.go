// Package authgate is the Go client of authgate: Verify and Exchange over
// gRPC with a typed denial (Denied, whose Reason is the proto's enum Reason),
// and net/http middleware that puts the verified identity in the request's
// context.
//
//	c, err := authgate.Dial("authgate:50051", authgate.WithTLS("ca.pem", "orders.pem", "orders-key.pem"))
//	http.Handle("/api/", c.Middleware(api, "editor"))
//	// in api: id := authgate.IdentityFrom(r.Context())
package authgate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	authgatev1 "github.com/authgate/authgate/clients/go/authgatev1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Client calls one authgate.
type Client struct {
	conn        *grpc.ClientConn
	stub        authgatev1.AuthServiceClient
	callerToken string
	// Timeout bounds each call (default 5s).
	Timeout time.Duration
}

type options struct {
	transport   grpc.DialOption
	callerToken string
	err         error
}

// Option configures Dial.
type Option func(*options)

// WithTLS uses TLS with the CA bundle at caFile, and this service's
// certificate and key (mutual TLS) when certFile is set. Without it the
// channel is plaintext: loopback or a service mesh only.
func WithTLS(caFile, certFile, keyFile string) Option {
	return func(o *options) {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			o.err = err
			return
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			o.err = fmt.Errorf("%s: no certificate", caFile)
			return
		}
		config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if certFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				o.err = err
				return
			}
			config.Certificates = []tls.Certificate{pair}
		}
		o.transport = grpc.WithTransportCredentials(credentials.NewTLS(config))
	}
}

// WithCallerToken sends this service's own token ([[caller_issuers]]) as
// gRPC metadata with every call.
func WithCallerToken(token string) Option {
	return func(o *options) { o.callerToken = token }
}

// Dial connects (lazily) to authgate at addr.
func Dial(addr string, opts ...Option) (*Client, error) {
	o := options{transport: grpc.WithInsecure()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	conn, err := grpc.Dial(addr, o.transport)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, stub: authgatev1.NewAuthServiceClient(conn), callerToken: o.callerToken, Timeout: 5 * time.Second}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, c.Timeout)
	if c.callerToken != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.callerToken)
	}
	return ctx, cancel
}

// Denied is a refusal: the gRPC code, authgate's Reason (REASON_UNSPECIFIED
// when the status carried none, e.g. a transport error), the message, and
// RetryAfter when the server suggests one.
type Denied struct {
	Code       codes.Code
	Reason     authgatev1.Reason
	Message    string
	RetryAfter time.Duration
}

func (d *Denied) Error() string {
	return fmt.Sprintf("%s %s: %s", d.Code, ReasonString(d.Reason), d.Message)
}

// ReasonString is the reason as ErrorInfo carries it ("token_expired").
func ReasonString(r authgatev1.Reason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REASON_"))
}

func denied(err error) error {
	st := status.Convert(err)
	d := &Denied{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		switch info := detail.(type) {
		case *errdetails.ErrorInfo:
			if info.Domain == "authgate" {
				d.Reason = authgatev1.Reason(authgatev1.Reason_value["REASON_"+strings.ToUpper(info.Reason)])
			}
		case *errdetails.RetryInfo:
			d.RetryAfter = info.RetryDelay.AsDuration()
		}
	}
	return d
}

// Verify checks a request: its token, or its headers (Authorization,
// Cookie). A refusal is a *Denied.
func (c *Client) Verify(parent context.Context, req *authgatev1.VerifyRequest) (*authgatev1.Identity, error) {
	ctx, cancel := c.ctx(parent)
	defer cancel()
	resp, err := c.stub.Verify(ctx, req)
	if err != nil {
		return nil, denied(err)
	}
	return resp.Identity, nil
}

// Exchange turns a user's token into one for audience. A refusal is a *Denied.
func (c *Client) Exchange(parent context.Context, req *authgatev1.ExchangeRequest) (*authgatev1.ExchangeResponse, error) {
	ctx, cancel := c.ctx(parent)
	defer cancel()
	resp, err := c.stub.Exchange(ctx, req)
	if err != nil {
		return nil, denied(err)
	}
	return resp, nil
}

type identityKey struct{}

// IdentityFrom is the identity Middleware verified (nil outside it).
func IdentityFrom(ctx context.Context) *authgatev1.Identity {
	id, _ := ctx.Value(identityKey{}).(*authgatev1.Identity)
	return id
}

// Middleware verifies every request's Authorization and Cookie headers
// (any of requiredRoles, when given) and calls next with the identity in
// the context; a denial is answered here: 401 (with WWW-Authenticate), 403,
// 400, 429 or 503 (with Retry-After), and a JSON {"error": reason} body.
func (c *Client) Middleware(next http.Handler, requiredRoles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers := map[string]string{}
		for _, name := range []string{"Authorization", "Cookie"} {
			if v := r.Header.Get(name); v != "" {
				headers[strings.ToLower(name)] = v
			}
		}
		id, err := c.Verify(r.Context(), &authgatev1.VerifyRequest{Headers: headers, RequiredRoles: requiredRoles})
		if err != nil {
			var d *Denied
			if !errors.As(err, &d) {
				d = &Denied{Code: codes.Unavailable}
			}
			code := map[codes.Code]int{codes.Unauthenticated: 401, codes.PermissionDenied: 403,
				codes.InvalidArgument: 400, codes.ResourceExhausted: 429}[d.Code]
			if code == 0 {
				code = 503
			}
			if code == 401 {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			if code == 429 || code == 503 {
				secs := int(d.RetryAfter.Seconds())
				if secs < 1 {
					secs = 1
				}
				w.Header().Set("Retry-After", fmt.Sprint(secs))
			}
			reason := ReasonString(d.Reason)
			if d.Reason == authgatev1.Reason_REASON_UNSPECIFIED {
				reason = strings.ToLower(d.Code.String())
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": reason})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}
