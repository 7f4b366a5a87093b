// Package logging builds the zap logger the binaries share: structured JSON
// lines to stdout and appended to a log file, so an operator can tail either.
// Packages never build loggers themselves; they take one in their Config.
package logging

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a JSON logger at info level writing to stdout and appending to
// file (created with its directory). The returned func flushes and closes.
func New(stdout io.Writer, file string) (*zap.Logger, func(), error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(encCfg),
		zapcore.Lock(zapcore.NewMultiWriteSyncer(zapcore.AddSync(stdout), zapcore.AddSync(f))),
		zap.InfoLevel)
	log := zap.New(core, zap.ErrorOutput(zapcore.AddSync(os.Stderr)))
	return log, func() { _ = log.Sync(); _ = f.Close() }, nil
}
