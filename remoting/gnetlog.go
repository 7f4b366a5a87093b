package remoting

import "go.uber.org/zap"

// gnetLogger passes gnet's warnings and errors to our zap logger. gnet's
// Debug/Info lines are dropped (start-up chatter), and Fatal is logged as an
// error: a transport must never exit the process. Note that gnet keeps one
// process-wide default logger besides the per-engine one, so the few lines
// gnet logs outside an engine may reach the logger of the server started
// last.
type gnetLogger struct{ l *zap.SugaredLogger }

func (g gnetLogger) Debugf(string, ...any)             {}
func (g gnetLogger) Infof(string, ...any)              {}
func (g gnetLogger) Warnf(format string, args ...any)  { g.l.Warnf("gnet: "+format, args...) }
func (g gnetLogger) Errorf(format string, args ...any) { g.l.Errorf("gnet: "+format, args...) }
func (g gnetLogger) Fatalf(format string, args ...any) { g.l.Errorf("gnet (fatal): "+format, args...) }
