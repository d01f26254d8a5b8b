package server

// AdminConnsOpen reports the admin listener's open connections and those
// authenticated (tests).
func AdminConnsOpen(s *Service) (all, authed int) { return s.adminConns.open() }

// GRPCStreams reports the ext_authz listener's open streams and held
// answers (tests).
func GRPCStreams(s *Service) (open, held int) { return s.grpcStreams.counts() }

// AdminStreams reports the admin listener's (tests).
func AdminStreams(s *Service) (open, held int) { return s.adminStreams.counts() }
