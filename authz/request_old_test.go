package authz

// parseInput as it was before its single pass over the six headers it
// reads and its short-circuiting sort comparison (issue 18): the
// differential tests hold the new one to it.

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardenauthz/warden/policy"
)

func parseInputOld(ci *checkInput, now time.Time, l Limits) request {
	var in request
	if ci.srcSocket {
		if ip, err := netip.ParseAddr(ci.srcAddr); err == nil {
			in.sourceIP = ip.WithZone("")
			in.sourcePort = ci.srcPort
		}
	}
	in.peerPrincipal = ci.principal
	in.peerCertificate = ci.certificate
	in.extensions = ci.extensions
	in.extCount, in.extBytes = ci.extCount, ci.extBytes
	if t := (timestamppb.Timestamp{Seconds: ci.timeSec, Nanos: ci.timeNanos}); ci.hasTime && t.IsValid() {
		in.time = t.AsTime()
	} else {
		in.time = now
	}
	if !ci.hasHTTP {
		in.network = true
		in.method = "CONNECT"
		in.host = ci.destService
		return in
	}
	in.method, in.path, in.host, in.scheme = ci.method, ci.path, ci.host, ci.scheme
	in.protocol = ci.protocol
	in.bodyBytes = max(ci.bodyBytes, ci.rawBodyBytes)
	in.headerCount, in.headerBytes = ci.headerCount, ci.headerBytes
	if l.screen(&in) != nil {
		return in
	}
	list := ci.headerMap
	if len(list) == 0 {
		list = ci.headers
	}
	for i := range list {
		list[i].Name = strings.ToLower(list[i].Name)
	}
	if len(ci.headerMap) > 0 {
		slices.SortStableFunc(list, byName)
	} else {
		slices.SortFunc(list, func(a, b policy.Header) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Value, b.Value))
		})
	}
	in.headers = joinRepeated(list)
	in.method = firstNonEmpty(in.method, in.header(":method"))
	in.path = firstNonEmpty(in.path, in.header(":path"))
	in.host = firstNonEmpty(in.host, in.header(":authority"))
	in.scheme = firstNonEmpty(in.scheme, in.header(":scheme"))
	in.requestID = in.header("x-request-id")
	in.authorization = in.header("authorization")
	return in
}
