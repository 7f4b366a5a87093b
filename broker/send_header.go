package broker

import (
	"strconv"
	"strings"

	"github.com/rmqd/rmqd/protocol"
	"github.com/rmqd/rmqd/remoting"
)

// The send path decodes and encodes its headers by hand: the reflective
// protocol.DecodeHeader/EncodeHeader cost several allocations and about a
// tenth of the send handler's CPU (issue 8 profiles). Anything the fast
// path does not accept (a missing required field, an unparseable number)
// falls back to protocol.DecodeHeader, which reports it the same way as
// before.

// decodeSendHeaderV2 fills h from SEND_MESSAGE_V2's one-letter keys ("a"
// to "n") read in one pass over the fields (a Get per key is a linear
// search each: 13 of them were 3% of the DLedger leader's CPU at sync64,
// issue 8); false when the slow path must decide.
func decodeSendHeaderV2(ext *remoting.Fields, h *protocol.SendMessageRequestHeader) bool {
	var v [14]string // v[c-'a'] is key c's value; absent and empty alike
	for k, val := range ext.All() {
		if len(k) == 1 && k[0] >= 'a' && k[0] <= 'n' {
			v[k[0]-'a'] = val
		}
	}
	at := func(c byte) string { return v[c-'a'] }
	if h.ProducerGroup, h.Topic = at('a'), at('b'); h.ProducerGroup == "" || h.Topic == "" {
		return false
	}
	h.DefaultTopic = at('c')
	h.Properties = at('i')
	h.BrokerName = at('n')
	if at('e') == "" {
		return false // required
	}
	return parseInt32(at('d'), &h.DefaultTopicQueueNums) &&
		parseInt32(at('e'), &h.QueueID) &&
		parseInt32(at('f'), &h.SysFlag) &&
		parseInt64(at('g'), &h.BornTimestamp) &&
		parseInt32(at('h'), &h.Flag) &&
		parseInt32(at('j'), &h.ReconsumeTimes) &&
		parseOptInt32(at('l'), &h.MaxReconsumeTimes) &&
		parseBool(at('k'), &h.UnitMode) &&
		parseBool(at('m'), &h.Batch)
}

// parseInt32 leaves *v alone when raw is empty (DecodeHeader's rule for
// optional fields, absent or empty).
func parseInt32(raw string, v *int32) bool {
	if raw == "" {
		return true
	}
	n, ok := atoi64(raw, 32)
	*v = int32(n)
	return ok
}

func parseInt64(raw string, v *int64) bool {
	if raw == "" {
		return true
	}
	n, ok := atoi64(raw, 64)
	*v = n
	return ok
}

func parseOptInt32(raw string, v **int32) bool {
	if raw == "" {
		return true
	}
	n, ok := atoi64(raw, 32)
	if ok {
		x := int32(n)
		*v = &x
	}
	return ok
}

func parseBool(raw string, v *bool) bool {
	if raw != "" {
		*v = strings.EqualFold(strings.TrimSpace(raw), "true")
	}
	return true
}

// atoi64 parses a decimal integer of the given bit size without allocating
// on the usual path (strconv allocates its error); false when DecodeHeader
// should report it.
func atoi64(raw string, bits int) (int64, bool) {
	s := raw
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	if s == "" || len(s) > 18 {
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, bits)
		return n, err == nil
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, bits)
			return n, err == nil
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if bits == 32 && (n > 1<<31-1 || n < -1<<31) {
		return 0, false
	}
	return n, true
}

// sendResponseExt is protocol.EncodeHeader(&SendMessageResponseHeader{...})
// without reflection (TransactionID is omitempty: the caller adds it).
func sendResponseExt(msgID string, queueID int32, queueOffset int64) remoting.Fields {
	return remoting.FieldsOf(
		"msgId", msgID,
		"queueId", strconv.Itoa(int(queueID)),
		"queueOffset", strconv.FormatInt(queueOffset, 10),
		"MSG_REGION", msgRegionDefault,
		"TRACE_ON", "true",
	)
}

// decodeSendRequest decodes req's header into sr.
func decodeSendRequest(req *remoting.RemotingCommand, sr *sendRequest) error {
	switch req.Code {
	case protocol.SendMessageV2, protocol.SendBatchMessage, protocol.SendReplyMessageV2:
		if !decodeSendHeaderV2(&req.ExtFields, &sr.header) {
			sr.header = protocol.SendMessageRequestHeader{}
			var v2 protocol.SendMessageRequestHeaderV2
			if err := protocol.DecodeHeader(&req.ExtFields, &v2); err != nil {
				return err
			}
			sr.header = v2.V1()
		}
	default:
		if err := protocol.DecodeHeader(&req.ExtFields, &sr.header); err != nil {
			return err
		}
	}
	sr.batch = req.Code == protocol.SendBatchMessage
	sr.reply = req.Code == protocol.SendReplyMessage || req.Code == protocol.SendReplyMessageV2
	return nil
}
