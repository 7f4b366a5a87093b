package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger returns a JSON zap logger writing to stdout and appending to
// file (created with its directory). The returned func flushes and closes.
func newLogger(stdout io.Writer, file string) (*zap.Logger, func(), error) {
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
