package server

// AdminConnsOpen reports the admin listener's open connections and those
// authenticated (tests).
func AdminConnsOpen(s *Service) (all, authed int) { return s.adminConns.open() }
