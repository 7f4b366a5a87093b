package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rmqd/rmqd/remoting"
)

type testHeader struct {
	Topic   string  `ext:"topic,required"`
	QueueID int32   `ext:"queueId"`
	Offset  int64   `ext:"offset,required"`
	Unit    bool    `ext:"unitMode"`
	Small   int8    `ext:"small,omitempty"`
	N       int     `ext:"n"`
	U       uint16  `ext:"u,omitempty"`
	Opt     *int32  `ext:"opt"`
	OptB    *bool   `ext:"optB"`
	Name    string  `ext:"name,omitempty"`
	Ignored string  // no tag
	Skipped string  `ext:"-"`
	OptS    *string `ext:"optS"`
}

func TestHeaderRoundTrip(t *testing.T) {
	seven := int32(7)
	yes := true
	s := ""
	h := testHeader{Topic: "T", QueueID: -3, Offset: 1 << 40, Unit: true, Small: -8, N: 42, U: 65535, Opt: &seven, OptB: &yes, OptS: &s, Ignored: "x", Skipped: "y"}
	ext := EncodeHeader(&h)
	want := map[string]string{"topic": "T", "queueId": "-3", "offset": "1099511627776", "unitMode": "true", "small": "-8", "n": "42", "u": "65535", "opt": "7", "optB": "true", "optS": ""}
	if got := ext.Map(); !reflect.DeepEqual(got, want) {
		t.Fatalf("EncodeHeader = %v, want %v", ext, want)
	}
	var got testHeader
	if err := DecodeHeader(&ext, &got); err != nil {
		t.Fatal(err)
	}
	h.Ignored, h.Skipped = "", ""
	h.OptS = nil // empty value decodes as absent
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip: got %+v, want %+v", got, h)
	}
	// value receiver works too
	if ext2 := EncodeHeader(h); ext2.Get("topic") != "T" {
		t.Fatalf("encode by value: %v", ext2)
	}
}

func TestHeaderOmitEmptyAndNil(t *testing.T) {
	ext := EncodeHeader(&testHeader{Topic: "T"})
	for _, k := range []string{"small", "u", "opt", "optB", "name", "optS"} {
		if _, ok := ext.Lookup(k); ok {
			t.Errorf("key %q should be omitted: %v", k, ext)
		}
	}
	for _, k := range []string{"queueId", "offset", "unitMode", "n"} {
		if _, ok := ext.Lookup(k); !ok {
			t.Errorf("key %q should be present: %v", k, ext)
		}
	}
}

func TestHeaderDecodeErrors(t *testing.T) {
	cases := []struct {
		name  string
		ext   map[string]string
		is    error
		field string
	}{
		{"missing topic", map[string]string{"offset": "1"}, ErrMissingField, `"topic"`},
		{"empty topic", map[string]string{"topic": "", "offset": "1"}, ErrMissingField, `"topic"`},
		{"missing offset", map[string]string{"topic": "T"}, ErrMissingField, `"offset"`},
		{"nil map", nil, ErrMissingField, `"topic"`},
		{"bad int", map[string]string{"topic": "T", "offset": "x1"}, ErrInvalidField, `"offset"`},
		{"int32 overflow", map[string]string{"topic": "T", "offset": "1", "queueId": "2147483648"}, ErrInvalidField, `"queueId"`},
		{"negative uint", map[string]string{"topic": "T", "offset": "1", "u": "-1"}, ErrInvalidField, `"u"`},
		{"bad pointer", map[string]string{"topic": "T", "offset": "1", "opt": "seven"}, ErrInvalidField, `"opt"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h testHeader
			err := DecodeHeader(fields(c.ext), &h)
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func TestHeaderDecodeLenient(t *testing.T) {
	h := testHeader{QueueID: 9, N: 5}
	err := DecodeHeader(fields(map[string]string{"topic": "T", "offset": " 12 ", "unitMode": "TRUE", "bname": "x", "nsd": "y"}), &h)
	if err != nil {
		t.Fatal(err)
	}
	if h.Offset != 12 || !h.Unit || h.QueueID != 9 || h.N != 5 {
		t.Fatalf("got %+v", h)
	}
	// Java's Boolean.parseBoolean: anything but "true" is false.
	h = testHeader{}
	if err := DecodeHeader(fields(map[string]string{"topic": "T", "offset": "1", "unitMode": "yes"}), &h); err != nil || h.Unit {
		t.Fatalf("unitMode=yes: %v %+v", err, h)
	}
}

func TestNamesrvHeadersRoundTrip(t *testing.T) {
	timeout := int64(10000)
	in := RegisterBrokerRequestHeader{BrokerName: "b", BrokerAddr: "1.2.3.4:10911", ClusterName: "C", HAServerAddr: "1.2.3.4:10912", BrokerID: 0, HeartbeatTimeoutMillis: &timeout, DLegerTerm: 5}
	ext := EncodeHeader(&in)
	if ext.Get("dLegerTerm") != "5" || ext.Get("brokerId") != "0" || ext.Get("compressed") != "false" || ext.Get("bodyCrc32") != "0" {
		t.Fatalf("ext = %v", ext)
	}
	var out RegisterBrokerRequestHeader
	if err := DecodeHeader(&ext, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v want %+v", out, in)
	}
	// a Java broker's header (no term, extra keys)
	java := map[string]string{"brokerName": "broker-a", "brokerAddr": "10.0.0.1:10911", "clusterName": "DefaultCluster", "haServerAddr": "10.0.0.1:10912", "brokerId": "1", "enableActingMaster": "false", "compressed": "false", "bodyCrc32": "12345"}
	out = RegisterBrokerRequestHeader{}
	if err := DecodeHeader(fields(java), &out); err != nil {
		t.Fatal(err)
	}
	if out.BrokerID != 1 || out.DLegerTerm != 0 || out.EnableActingMaster == nil || *out.EnableActingMaster || out.BodyCrc32 != 12345 {
		t.Fatalf("java header: %+v", out)
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	ext := fields(map[string]string{"brokerName": "broker-a", "brokerAddr": "10.0.0.1:10911", "clusterName": "DefaultCluster", "haServerAddr": "10.0.0.1:10912", "brokerId": "1"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var h RegisterBrokerRequestHeader
		if err := DecodeHeader(ext, &h); err != nil {
			b.Fatal(err)
		}
	}
}

// fields is m as the ext fields of a command.
func fields(m map[string]string) *remoting.Fields {
	f := remoting.FieldsFrom(m)
	return &f
}
