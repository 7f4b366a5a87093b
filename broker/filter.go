package broker

import (
	"errors"
	"strings"
	"unicode/utf16"
)

var (
	errSQLFilter       = errors.New("broker: SQL92 filtering is not supported (enablePropertyFilter)")
	errBadSubscription = errors.New("broker: subscription expression has no tag")
)

// Subscription filtering by tag (protocol.md §5.7, §7.3).

// expressionTag and expressionSQL92 are the expressionType values.
const (
	expressionTag   = "TAG"
	expressionSQL92 = "SQL92"
	subAll          = "*"
)

// tagHash is Java's String.hashCode of s: h = 31*h + c over UTF-16 code
// units with int32 overflow, sign-extended to int64. It is what the consume
// queue stores as tagsCode and what subscriptions carry in codeSet. The Go
// client hashes UTF-8 bytes instead; for ASCII tags the two agree, so the
// broker always recomputes hashes from tag strings with Java semantics.
func tagHash(s string) int64 {
	var h int32
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		for i := 0; i < len(s); i++ {
			h = 31*h + int32(s[i])
		}
		return int64(h)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return int64(h)
}

// subscription is the broker's view of one topic subscription of a consumer
// group: the tags it accepts, by hash (for the consume-queue test) and by name.
type subscription struct {
	Topic          string
	SubString      string
	ExpressionType string
	SubVersion     int64
	ClassFilter    bool
	Tags           []string
	Codes          map[int64]struct{}
}

// matchAll reports whether the subscription accepts every message, tagged or
// not: "*" or an empty expression of type TAG. SQL92 expressions are not
// evaluated by rmqd (enablePropertyFilter is not supported): the pull
// processor refuses them, as a Java broker does by default.
func (s *subscription) matchAll() bool {
	return s == nil || s.ClassFilter || len(s.Codes) == 0
}

// matchTagsCode is the consume-queue test: the stored tag hash is one of the
// subscribed hashes. A message without tags has hash 0 and matches only a
// match-all subscription (unless a tag happens to hash to 0).
func (s *subscription) matchTagsCode(code int64) bool {
	if s.matchAll() {
		return true
	}
	_, ok := s.Codes[code]
	return ok
}

// parseSubscription builds a subscription from a TAG expression: "*" or ""
// means all; otherwise the expression is split on "||", each piece trimmed
// and empty pieces dropped. An expression that leaves no tag is an error.
func parseSubscription(topic, expr, expressionType string) (*subscription, error) {
	if expressionType == "" {
		expressionType = expressionTag
	}
	s := &subscription{Topic: topic, SubString: expr, ExpressionType: expressionType}
	if !strings.EqualFold(expressionType, expressionTag) {
		return s, errSQLFilter
	}
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == subAll {
		s.SubString = subAll
		return s, nil
	}
	for _, piece := range strings.Split(expr, "||") {
		tag := strings.TrimSpace(piece)
		if tag == "" {
			continue
		}
		s.addTag(tag)
	}
	if len(s.Tags) == 0 {
		return nil, errBadSubscription
	}
	return s, nil
}

func (s *subscription) addTag(tag string) {
	if s.Codes == nil {
		s.Codes = map[int64]struct{}{}
	}
	for _, t := range s.Tags {
		if t == tag {
			return
		}
	}
	s.Tags = append(s.Tags, tag)
	s.Codes[tagHash(tag)] = struct{}{}
}

// subscriptionFromHeartbeat converts the wire form. Tag hashes are recomputed
// from tagsSet (Java semantics) and codeSet is ignored, because Go sends
// UTF-8 byte hashes as strings and Java sends numbers.
func subscriptionFromHeartbeat(d *subscriptionData) *subscription {
	s := &subscription{
		Topic:          d.Topic,
		SubString:      d.SubString,
		ExpressionType: d.ExpressionType,
		SubVersion:     d.SubVersion,
		ClassFilter:    d.ClassFilterMode,
	}
	if s.ExpressionType == "" {
		s.ExpressionType = expressionTag
	}
	if !strings.EqualFold(s.ExpressionType, expressionTag) {
		return s
	}
	sub := strings.TrimSpace(d.SubString)
	if sub == "" || sub == subAll {
		return s
	}
	for _, t := range d.TagsSet {
		if t = strings.TrimSpace(t); t != "" {
			s.addTag(t)
		}
	}
	if len(s.Tags) == 0 { // a client that sent the expression but no set
		if p, err := parseSubscription(d.Topic, d.SubString, s.ExpressionType); err == nil {
			s.Tags, s.Codes = p.Tags, p.Codes
		}
	}
	return s
}

// toWire converts back for GET_CONSUMER_CONNECTION_LIST and friends.
func (s *subscription) toWire() subscriptionData {
	d := subscriptionData{
		ClassFilterMode: s.ClassFilter,
		Topic:           s.Topic,
		SubString:       s.SubString,
		ExpressionType:  s.ExpressionType,
		SubVersion:      s.SubVersion,
		TagsSet:         append([]string{}, s.Tags...),
		CodeSet:         codeSet{},
	}
	for _, t := range s.Tags {
		d.CodeSet = append(d.CodeSet, int32(tagHash(t)))
	}
	return d
}

// sameTopics reports whether two subscription tables cover the same topics.
func sameTopics(a, b map[string]*subscription) bool {
	if len(a) != len(b) {
		return false
	}
	for t := range a {
		if _, ok := b[t]; !ok {
			return false
		}
	}
	return true
}
