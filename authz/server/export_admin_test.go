package server

// AdminConnsOpen reports the admin listener's open connections and those
// authenticated (tests).
func AdminConnsOpen(s *Service) (all, authed int) { return s.adminConns.open() }

// GRPCStreams reports the ext_authz listener's open streams and held
// answers (tests); -1, -1 before Serve has built its server.
func GRPCStreams(s *Service) (open, held int) {
	l := s.grpcStreams.Load()
	if l == nil {
		return -1, -1
	}
	return l.counts()
}

// AdminStreams reports the admin listener's (tests).
func AdminStreams(s *Service) (open, held int) { return s.adminStreams.counts() }

// MaxHTTPConns is the probe listener's connection cap (tests).
const MaxHTTPConns = maxHTTPConns
