// Package protocol is RocketMQ's vocabulary as data: request and response
// codes, typed request/response headers, and the JSON bodies that name
// servers, brokers and clients exchange. It holds no behaviour beyond
// converting those types to and from the wire; the frame itself is
// remoting.RemotingCommand. protocol may import remoting and nothing else
// of ours (design.md §7).
//
// # Codes
//
// Request codes are int16 constants named after Java's RequestCode in Go
// style (SendMessage = 10, PullMessage = 11, RegisterBroker = 103,
// GetRouteinfoByTopic = 105, ...). Response codes follow ResponseCode
// (Success = 0, SystemError = 1, TopicNotExist = 17, QueryNotFound = 22,
// ...). The numbers are wire values and never change.
//
// # Headers
//
// A header is a struct whose fields carry an `ext` tag naming the extFields
// key:
//
//	type GetRouteInfoRequestHeader struct {
//		Topic                  string `ext:"topic,required"`
//		AcceptStandardJSONOnly bool   `ext:"acceptStandardJsonOnly,omitempty"`
//	}
//
//	var h protocol.GetRouteInfoRequestHeader
//	if err := protocol.DecodeHeader(&req.ExtFields, &h); err != nil {
//		// errors.Is(err, protocol.ErrMissingField) / ErrInvalidField;
//		// the message names the field. Answer SYSTEM_ERROR or
//		// INVALID_PARAMETER with err.Error() as the remark.
//	}
//	resp.ExtFields = protocol.EncodeHeader(&protocol.GetKVConfigResponseHeader{Value: v})
//
// Supported field types: string, bool, all integer types, and pointers to
// them (nil = absent, for fields whose absence differs from zero). Options:
// "required" (DecodeHeader fails when the key is absent or empty) and
// "omitempty" (EncodeHeader leaves zero values out). Every value on the
// wire is a string: integers in decimal, booleans "true"/"false". Keys a
// header does not declare are ignored. Reflection is done once per type.
//
// # The DLedger term extension
//
// REGISTER_BROKER may carry ext "dLegerTerm" (decimal int64), the Raft term
// of the registering broker's DLedger group; absent or "0" for classic
// brokers. Name servers keep the highest term per brokerName and ignore
// registrations from an older one (see namesrv and design.md §3). Java
// name servers ignore the key, so the extension is harmless to them.
//
// # JSON bodies and the two JSON styles
//
// Java serialises with fastjson, which writes map keys of integer type bare:
// "brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}. That is not JSON,
// yet it is what a Java name server sends to clients older than V4_9_4
// (version 401) — rocketmq-client-go sends 317 — and what Java brokers write
// in some bodies and config files. Newer clients get standard JSON with
// quoted keys. TopicRouteData and ClusterInfo therefore have an Encode
// method taking a JSONStyle; RouteJSONStyle picks the style a Java name
// server would. Both styles are compact (rocketmq-client-go parses
// brokerAddrs textually: it drops the braces, splits on ',' and on the
// first ':', strips '"' and parses the key as an integer, so a single
// space breaks it), keys are in fastjson's alphabetical order, queueDatas
// is always an array and brokerAddrs always an object.
//
// For reading, QuoteIntKeys rewrites bare integer keys into quoted ones and
// UnmarshalLenient runs encoding/json on the result, so Go code can parse
// whatever a Java peer sends. DecodeTopicRouteData, DecodeClusterInfo and
// DecodeRegisterBrokerBody use it; the last one also inflates the
// deprecated compressed REGISTER_BROKER body (ext compressed=true).
//
// Body types: TopicRouteData, QueueData, BrokerData, ClusterInfo,
// RegisterBrokerBody (TopicConfigSerializeWrapper: topicConfigTable +
// dataVersion, and filterServerList), TopicConfig, DataVersion, TopicList,
// KVTable. Permission bits (PermRead, PermWrite, PermInherit,
// PermPriority) and well-known names (AutoCreateTopicKey "TBW102",
// DefaultCluster) live here too.
package protocol
