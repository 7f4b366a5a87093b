package conf

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// NamesrvConfig is namesrv.conf (Java NamesrvConfig plus the name server's
// NettyServerConfig listenPort). Field tags carry the Java key names.
type NamesrvConfig struct {
	RocketmqHome                      string `key:"rocketmqHome" path:"true" important:"true"`
	ListenPort                        int    `key:"listenPort" important:"true"`
	KVConfigPath                      string `key:"kvConfigPath" path:"true" important:"true"`
	ConfigStorePath                   string `key:"configStorePath" path:"true"`
	ProductEnvName                    string `key:"productEnvName"`
	ClusterTest                       bool   `key:"clusterTest"`
	OrderMessageEnable                bool   `key:"orderMessageEnable"`
	ReturnOrderTopicConfigToBroker    bool   `key:"returnOrderTopicConfigToBroker"`
	ScanNotActiveBrokerInterval       int    `key:"scanNotActiveBrokerInterval"`
	ClientRequestThreadPoolNums       int    `key:"clientRequestThreadPoolNums"`
	DefaultThreadPoolNums             int    `key:"defaultThreadPoolNums"`
	EnableAllTopicList                bool   `key:"enableAllTopicList"`
	EnableTopicList                   bool   `key:"enableTopicList"`
	NotifyMinBrokerIDChanged          bool   `key:"notifyMinBrokerIdChanged"`
	DeleteTopicWithBrokerRegistration bool   `key:"deleteTopicWithBrokerRegistration"`
	// rmqd keys.
	// BrokerChannelExpiredTime is how long (ms) a broker may go without
	// re-registering before it is dropped from routes (a constant, 120 s, in Java).
	BrokerChannelExpiredTime int `key:"brokerChannelExpiredTime"`
	MaxFrameSize             int `key:"maxFrameSize"`
}

// DefaultNamesrv returns Java's defaults: listenPort 9876,
// kvConfigPath ~/namesrv/kvConfig.json, scanNotActiveBrokerInterval 5000 ms.
func DefaultNamesrv() *NamesrvConfig {
	return &NamesrvConfig{
		RocketmqHome:                   os.Getenv("ROCKETMQ_HOME"),
		ListenPort:                     9876,
		KVConfigPath:                   ExpandPath("~/namesrv/kvConfig.json"),
		ConfigStorePath:                ExpandPath("~/namesrv/namesrv.properties"),
		ProductEnvName:                 "center",
		ReturnOrderTopicConfigToBroker: true,
		ScanNotActiveBrokerInterval:    5000,
		ClientRequestThreadPoolNums:    8,
		DefaultThreadPoolNums:          16,
		EnableAllTopicList:             true,
		EnableTopicList:                true,
		BrokerChannelExpiredTime:       120000,
		MaxFrameSize:                   16 << 20,
	}
}

// LoadNamesrv reads a namesrv.conf over DefaultNamesrv; errors and warnings
// as for LoadBroker.
func LoadNamesrv(path string) (*NamesrvConfig, []string, error) {
	c := DefaultNamesrv()
	w, err := loadFile(path, c, javaNamesrvKeys)
	if err != nil {
		return nil, w, err
	}
	return c, w, nil
}

// ParseNamesrv is LoadNamesrv for an in-memory file; name is used in messages.
func ParseNamesrv(name, text string) (*NamesrvConfig, []string, error) {
	entries, err := ReadProperties(strings.NewReader(text))
	if err != nil {
		return nil, nil, fmt.Errorf("conf: %s: %w", name, err)
	}
	c := DefaultNamesrv()
	w, err := applyEntries(name, entries, c, javaNamesrvKeys)
	if err != nil {
		return nil, w, err
	}
	return c, w, nil
}

// Set parses value into key; errors as for BrokerConfig.Set.
func (c *NamesrvConfig) Set(key, value string) error {
	return setKey(c, javaNamesrvKeys, key, value)
}

// Get returns the current value of key as Properties prints it.
func (c *NamesrvConfig) Get(key string) (string, bool) { return getKey(c, key) }

// Properties prints every key as key=value lines (for -p).
func (c *NamesrvConfig) Properties() string { return properties(c) }

// ImportantProperties prints only the most important keys.
func (c *NamesrvConfig) ImportantProperties() string { return importantProperties(c) }

// String is Properties.
func (c *NamesrvConfig) String() string { return properties(c) }

// Clone returns a copy.
func (c *NamesrvConfig) Clone() *NamesrvConfig { cp := *c; return &cp }

// NamesrvKeys lists every key of namesrv.conf in Properties order.
func NamesrvKeys() []string { return keysOf(&NamesrvConfig{}) }

// Validate checks ports and intervals.
func (c *NamesrvConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: invalid(format, args...)})
	}
	if c.ListenPort < 1 || c.ListenPort > 65535 {
		bad("listenPort", "must be in 1..65535, got %d", c.ListenPort)
	}
	if c.ScanNotActiveBrokerInterval <= 0 {
		bad("scanNotActiveBrokerInterval", "must be > 0, got %d", c.ScanNotActiveBrokerInterval)
	}
	if c.BrokerChannelExpiredTime <= 0 {
		bad("brokerChannelExpiredTime", "must be > 0, got %d", c.BrokerChannelExpiredTime)
	}
	if c.ClientRequestThreadPoolNums <= 0 {
		bad("clientRequestThreadPoolNums", "must be > 0, got %d", c.ClientRequestThreadPoolNums)
	}
	if c.DefaultThreadPoolNums <= 0 {
		bad("defaultThreadPoolNums", "must be > 0, got %d", c.DefaultThreadPoolNums)
	}
	if c.MaxFrameSize < 1024 {
		bad("maxFrameSize", "must be >= 1024, got %d", c.MaxFrameSize)
	}
	return errors.Join(errs...)
}
