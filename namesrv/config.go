package namesrv

import (
	"time"

	"go.uber.org/zap"
)

// Defaults (Java's).
const (
	DefaultBrokerTimeout = 120 * time.Second
	DefaultScanInterval  = 5 * time.Second
)

// Config configures a name server. Build it with DefaultConfig and change
// what you need; cmd/namesrv fills it from conf.NamesrvConfig.
type Config struct {
	// Logger receives structured logs; nil = no logging.
	Logger *zap.Logger
	// KVConfigPath is the KV-config file (Java kvConfigPath); "" keeps the
	// KV config in memory only.
	KVConfigPath string
	// ScanInterval is how often expired brokers are looked for
	// (scanNotActiveBrokerInterval).
	ScanInterval time.Duration
	// BrokerTimeout is how long a broker stays registered without
	// re-registering (120 s in Java); a registration's
	// heartbeatTimeoutMillis overrides it for that broker.
	BrokerTimeout time.Duration
	// OrderMessageEnable fills TopicRouteData.orderTopicConf from the KV
	// namespace ORDER_TOPIC_CONFIG.
	OrderMessageEnable bool
	// ReturnOrderTopicConfigToBroker sends the ORDER_TOPIC_CONFIG namespace
	// back in the REGISTER_BROKER reply.
	ReturnOrderTopicConfigToBroker bool
	// EnableAllTopicList allows GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
	EnableAllTopicList bool
	// EnableTopicList allows GET_TOPICS_BY_CLUSTER and the unit-topic lists.
	EnableTopicList bool
	// DeleteTopicWithBrokerRegistration: a master's registration removes its
	// queue data from topics missing in its topic table.
	DeleteTopicWithBrokerRegistration bool
	// Now is the clock; nil = time.Now.
	Now func() time.Time

	// ConfigProperties renders the effective configuration for
	// GET_NAMESRV_CONFIG as "key=value" lines; nil = the fields above.
	ConfigProperties func() string
	// UpdateConfig validates and records an UPDATE_NAMESRV_CONFIG before
	// the name server applies the keys it can change at run time
	// (orderMessageEnable, returnOrderTopicConfigToBroker,
	// enableAllTopicList, enableTopicList); an error refuses the update.
	// nil = only those keys are accepted.
	UpdateConfig func(props map[string]string) error
}

// DefaultConfig returns Java's defaults with no KV file.
func DefaultConfig() Config {
	return Config{
		ScanInterval:                   DefaultScanInterval,
		BrokerTimeout:                  DefaultBrokerTimeout,
		ReturnOrderTopicConfigToBroker: true,
		EnableAllTopicList:             true,
		EnableTopicList:                true,
	}
}
