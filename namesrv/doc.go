// Package namesrv is rmqd's name server: the route registry that brokers
// register with and that producers, consumers and admin tools ask where a
// topic lives (protocol.md §4). It speaks RocketMQ's name-server protocol
// byte for byte, so Java and Go clients, mqadmin and Java brokers use it
// unchanged.
//
// # Using it
//
//  1. Build a Config (DefaultConfig, then set Logger, KVConfigPath, ...),
//     and call New. It loads the KV-config file.
//  2. Serve it: Register(mux) installs Handler for every code in Codes on a
//     remoting mux (or use Handler directly as the server's handler: it
//     answers unknown codes REQUEST_CODE_NOT_SUPPORTED).
//  3. Wire the remoting server's OnConnClose to ConnClosed, so a broker
//     whose connection closes leaves the routes at once.
//  4. Start runs the expiry scan; Close stops it.
//
// # Codes answered
//
//	100 PUT_KV_CONFIG            ns/key/value, persisted to KVConfigPath
//	101 GET_KV_CONFIG            ext value, or 22 QUERY_NOT_FOUND
//	102 DELETE_KV_CONFIG
//	103 REGISTER_BROKER          body JSON or compressed; reply ext masterAddr/haServerAddr
//	                             (for slaves), body ORDER_TOPIC_CONFIG KVTable
//	104 UNREGISTER_BROKER
//	105 GET_ROUTEINFO_BY_TOPIC   TopicRouteData, or 17 TOPIC_NOT_EXIST
//	106 GET_BROKER_CLUSTER_INFO  ClusterInfo
//	205 WIPE_WRITE_PERM_OF_BROKER / 327 ADD_WRITE_PERM_OF_BROKER
//	206 GET_ALL_TOPIC_LIST_FROM_NAMESERVER   (1 "disable" if turned off)
//	216 DELETE_TOPIC_IN_NAMESRV  whole route, or one cluster's share
//	217 REGISTER_TOPIC_IN_NAMESRV
//	219 GET_KVLIST_BY_NAMESPACE  KVTable, or 22
//	224 GET_TOPICS_BY_CLUSTER, 304 GET_SYSTEM_TOPIC_LIST_FROM_NS,
//	311/312/313 unit-topic lists
//	318 UPDATE_NAMESRV_CONFIG / 319 GET_NAMESRV_CONFIG  (properties text)
//	322 QUERY_DATA_VERSION, 904 BROKER_HEARTBEAT  (refresh liveness)
//
// Route bodies use fastjson's bare integer brokerAddrs keys for requests
// with version < 401 (rocketmq-client-go sends 317) unless the request says
// acceptStandardJsonOnly=true, and standard JSON otherwise; cluster info is
// always fastjson. That is exactly what a Java name server does (see
// package protocol).
//
// # The route table
//
// RouteTable holds topics → queue data per broker group, broker groups →
// addresses by brokerId, clusters → broker groups, and one liveness record
// per registered broker process. One RWMutex guards it all; handlers never
// do I/O while holding it. Rules:
//
//   - Only a master's (brokerId 0) registration changes queue data, and only
//     on its first registration or when its DataVersion changed, so a
//     WIPE_WRITE_PERM survives the broker's periodic re-registration.
//   - Registering an address under a brokerId removes that address from
//     any other id (a slave promoted to master in place).
//   - A brokerId 0 registration from a new address replaces the old master
//     at once and forgets the old master's liveness record.
//   - DLedger term (ext "dLegerTerm", design.md §3): the table remembers the
//     highest term per brokerName; a registration from an older term is
//     ignored and answered SYSTEM_ERROR "register broker failed: stale
//     dLegerTerm ...". Term 0 (classic brokers) is never checked.
//   - A broker is dropped when it has not registered for BrokerTimeout
//     (120 s; a registration's heartbeatTimeoutMillis overrides it), found
//     by a scan every ScanInterval (5 s) that also closes its connection;
//     and at once when the connection it last registered over closes.
//     Dropping a group's last address removes the group, its cluster
//     membership and its queue data.
//
// # Not implemented
//
// 5.x controller mode and acting master (901 GET_BROKER_MEMBER_GROUP,
// 905...), static topics (topicQueueMappingByBroker), and the HAProxy/TLS
// sniffing of the Java server.
package namesrv
