package remoting

// DefaultLanguage is the language name written when a command's Language is
// empty. "JAVA" is the value every Java peer maps onto its enum without
// surprises (protocol.md §1.3).
const DefaultLanguage = "JAVA"

// DefaultVersion is the version written when a command's Version is 0:
// 409 = MQVersion V4_9_8, the last 4.9.x release. It is ≥ 401 (V4_9_4), so a
// Java name server answers us with standard route JSON, and ≤ 475, so Java
// servers never send us 5.3 GO_AWAY frames (protocol.md §1.3, §10).
const DefaultVersion int16 = 409

// DefaultMaxFrameSize is the largest frame length accepted by default
// (16 MiB, as the Java server's frameMaxLength).
const DefaultMaxFrameSize = 16 << 20

// languageNames maps the binary language byte onto the JSON name
// (protocol.md §1.3).
var languageNames = [...]string{
	"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER",
	"HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS",
}

// languageCode returns the binary language byte for name; unknown names map
// onto OTHER (7) and "" onto JAVA (0).
func languageCode(name string) byte {
	if name == "" {
		return 0
	}
	for i, n := range languageNames {
		if n == name {
			return byte(i)
		}
	}
	return 7
}

// languageName returns the name of a binary language byte; unknown bytes
// decode as "OTHER".
func languageName(b byte) string {
	if int(b) < len(languageNames) {
		return languageNames[b]
	}
	return "OTHER"
}

// internLanguage returns a static string equal to b when b is a known
// language name, so decoding the common values does not allocate.
func internLanguage(b []byte) (string, bool) {
	for _, n := range languageNames {
		if string(b) == n {
			return n, true
		}
	}
	return "", false
}

// NewRequest returns a request with the given code and ext fields. Opaque
// is assigned when the request is sent.
func NewRequest(code int16, ext Fields, body []byte) *RemotingCommand {
	return &RemotingCommand{Code: code, ExtFields: ext, Body: body}
}

// NewResponse returns a response to req: it copies req's Opaque and
// SerializeType and sets the response flag, so it can be returned by a
// handler or sent later with Conn.Send (long polling).
func NewResponse(req *RemotingCommand, code int16, remark string) *RemotingCommand {
	return &RemotingCommand{
		Code:          code,
		Opaque:        req.Opaque,
		Flag:          FlagResponse,
		Remark:        remark,
		SerializeType: req.SerializeType,
	}
}

// MarkResponseTo turns resp into the response of req (opaque, response
// flag, serialize type). The server calls it on a handler's return value.
func MarkResponseTo(resp, req *RemotingCommand) {
	resp.Opaque = req.Opaque
	resp.Flag |= FlagResponse
	resp.Flag &^= FlagOneway
	resp.SerializeType = req.SerializeType
}
