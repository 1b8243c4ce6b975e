package envoysim

import (
	"net/http"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// action is what a HeaderValueOption does to a header (ext_authz_grpc_impl.cc, getAppendAction).
type action int

const (
	actSet               action = iota // OVERWRITE_IF_EXISTS_OR_ADD, append: false
	actAdd                             // APPEND_IF_EXISTS_OR_ADD: a further entry
	actAppend                          // append: true on a request header: joined to the existing value with ','
	actAddIfAbsent                     // ADD_IF_ABSENT
	actOverwriteIfExists               // OVERWRITE_IF_EXISTS
)

type mutation struct {
	key, value string
	act        action
}

// toMutation reads one HeaderValueOption. The deprecated append BoolValue, when set, wins over
// append_action: true appends to a request header (appendCopy) and adds a response header,
// false overwrites. An unknown append_action overwrites.
func toMutation(hv *corev3.HeaderValueOption, response bool) mutation {
	m := mutation{key: hv.GetHeader().GetKey(), value: hv.GetHeader().GetValue(), act: actSet}
	if a := hv.GetAppend(); a != nil {
		switch {
		case a.GetValue() && response:
			m.act = actAdd
		case a.GetValue():
			m.act = actAppend
		}
		return m
	}
	switch hv.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		m.act = actAdd
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		m.act = actAddIfAbsent
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		m.act = actOverwriteIfExists
	}
	return m
}

func (m mutation) apply(h http.Header) {
	k := http.CanonicalHeaderKey(m.key)
	switch m.act {
	case actSet:
		h[k] = []string{m.value}
	case actAdd:
		h[k] = append(h[k], m.value)
	case actAppend:
		delim := ","
		if k == "Cookie" {
			delim = "; "
		}
		appendHeader(h, k, m.value, delim)
	case actAddIfAbsent:
		if len(h[k]) == 0 {
			h[k] = []string{m.value}
		}
	case actOverwriteIfExists:
		if len(h[k]) > 0 {
			h[k] = []string{m.value}
		}
	}
}

// Envoy's default request header limits (max_request_headers_kb, max_headers_count): an OK
// response that grows the request beyond them is rejected.
const (
	maxRequestHeaderBytes = 60 * 1024
	maxRequestHeaders     = 100
)

// applyOK applies an OkHttpResponse to the request as Filter::onComplete does: header mutations
// in order, then headers_to_remove (pseudo-headers and host cannot be removed), then the query
// parameter changes; response_headers_to_add are kept for the upstream response. It reports
// false when Envoy would reject the response (invalid header, request headers over the limits).
func (p *Proxy) applyOK(st *stream, ok *authv3.OkHttpResponse) bool {
	for _, hv := range ok.GetHeaders() {
		m := toMutation(hv, false)
		if !validHeaderName(m.key) || !validHeaderValue(m.value) {
			return false
		}
		st.applyRequestMutation(m)
	}
	for _, k := range ok.GetHeadersToRemove() {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, ":") || lk == "host" {
			continue
		}
		st.header.Del(lk)
	}
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		st.path = mutateQuery(st.path, ok.GetQueryParametersToSet(), ok.GetQueryParametersToRemove())
	}
	for _, hv := range ok.GetResponseHeadersToAdd() {
		m := toMutation(hv, true)
		if !validHeaderName(m.key) || !validHeaderValue(m.value) {
			return false
		}
		st.respMutations = append(st.respMutations, m)
	}
	count, size := 4, len(st.authority)+len(st.path)+len(st.method)+len(st.scheme)
	for k, vs := range st.header {
		for _, v := range vs {
			count++
			size += len(k) + len(v)
		}
	}
	return count <= maxRequestHeaders && size <= maxRequestHeaderBytes
}

// applyRequestMutation applies m to the request; a pseudo-header (or host, which is :authority
// in Envoy's map) changes the request line.
func (st *stream) applyRequestMutation(m mutation) {
	lk := strings.ToLower(m.key)
	var pseudo *string
	switch lk {
	case ":authority", "host":
		pseudo = &st.authority
	case ":path":
		pseudo = &st.path
	case ":method":
		pseudo = &st.method
	case ":scheme":
		pseudo = &st.scheme
	}
	if pseudo == nil {
		if !strings.HasPrefix(lk, ":") {
			m.apply(st.header)
		}
		return
	}
	h := http.Header{}
	if *pseudo != "" {
		h.Set("X", *pseudo)
	}
	m.key = "X"
	m.apply(h)
	*pseudo = h.Get("X")
}

// mutateQuery applies query_parameters_to_set/remove the way Envoy's QueryParamsMulti does: the
// query is parsed without decoding into a map sorted by name, changed, and written back as
// name=value pairs joined by '&' (the order of names is then sorted).
func mutateQuery(path string, set []*corev3.QueryParameter, remove []string) string {
	p, q := splitQuery(path)
	params := map[string][]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(q, "?"), "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		params[k] = append(params[k], v)
	}
	for _, s := range set {
		params[s.GetKey()] = []string{s.GetValue()}
	}
	for _, k := range remove {
		delete(params, k)
	}
	if len(params) == 0 {
		return p
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		for _, v := range params[k] {
			pairs = append(pairs, k+"="+v)
		}
	}
	return p + "?" + strings.Join(pairs, "&")
}

// validHeaderName: an RFC 9110 token, or a pseudo-header name.
func validHeaderName(k string) bool {
	k = strings.TrimPrefix(k, ":")
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 0x80 || c <= ' ' || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 || c == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderValue: no NUL, CR or LF (Envoy's HeaderUtility::headerValueIsValid).
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\x00\r\n")
}
