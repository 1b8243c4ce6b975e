package extauthz

import (
	"github.com/certbind/certbind/extauthz/xfcc"
	"github.com/certbind/certbind/policy"
)

// settings is the adapter's reading of one configuration, compiled once, when the
// configuration serves its first request: certificate sources, the XFCC parser's limits and
// element policy in the xfcc package's own types, the HTTP endpoint's settings and the
// response settings, so that no request converts or looks them up again.
type settings struct {
	sources  policy.Sources
	limits   xfcc.Limits
	elements xfcc.Policy
	trusted  []string // xfcc.trusted_proxies
	http     policy.HTTPAuthzSettings
	response policy.Response
	// parse reads certificate DER with the configuration's interned intermediates.
	parse func(leaf []byte, intermediates [][]byte) (*policy.Presented, error)
}

func compileSettings(cfg *policy.Config) *settings {
	elements := xfcc.PolicySingle
	if cfg.XFCC.Elements == policy.ElementsLast {
		elements = xfcc.PolicyLast
	}
	return &settings{
		sources: cfg.Sources,
		limits: xfcc.Limits{
			MaxHeaderBytes: cfg.XFCC.MaxHeaderBytes,
			MaxElements:    xfcc.DefaultLimits.MaxElements,
			MaxChainCerts:  cfg.XFCC.MaxChainLength,
		},
		elements: elements,
		trusted:  cfg.XFCC.TrustedProxies,
		http:     cfg.HTTPAuthz,
		response: cfg.Response(),
		parse:    cfg.ParsePresented,
	}
}
