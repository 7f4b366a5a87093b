package broker

import (
	"github.com/rmqd/rmqd/remoting"
	"go.uber.org/zap"
)

// namesrvClient is what the broker needs of the remoting client: one
// request/response exchange with a name server, and Close.
type namesrvClient interface {
	NamesrvInvoker
	Close() error
}

// newNamesrvClient builds the client used for name-server registration.
func newNamesrvClient(log *zap.Logger) (namesrvClient, error) {
	return remoting.NewClient(remoting.ClientConfig{Logger: log}), nil
}
