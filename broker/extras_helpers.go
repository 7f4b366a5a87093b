package broker

import (
	"strconv"
	"strings"
	"time"
)

// Pure helpers of the retry, delay and transaction services (protocol.md
// §8): no I/O, no clock, so they are unit-tested directly.

// System topics and groups of §8.
const (
	scheduleTopic      = "SCHEDULE_TOPIC_XXXX"
	transHalfTopic     = "RMQ_SYS_TRANS_HALF_TOPIC"
	transOpHalfTopic   = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	transCheckMaxTopic = "TRANS_CHECK_MAX_TIME_TOPIC"
	transGroup         = "CID_RMQ_SYS_TRANS" // progress of the check scan, as a consumer group
	retryTopicPrefix   = "%RETRY%"
	dlqTopicPrefix     = "%DLQ%"
	transOpRemoveTag   = "d"
	dlqQueueNums       = 1
)

// Reserved property names used here (protocol.md §5.6).
const (
	propDelay             = "DELAY"
	propRealTopic         = "REAL_TOPIC"
	propRealQueueID       = "REAL_QID"
	propRetryTopic        = "RETRY_TOPIC"
	propOriginMessageID   = "ORIGIN_MESSAGE_ID"
	propTransPrepared     = "TRAN_MSG"
	propProducerGroup     = "PGROUP"
	propTransactionID     = "__transactionId__"
	propUniqKey           = "UNIQ_KEY"
	propTags              = "TAGS"
	propTransCheckTimes   = "TRANSACTION_CHECK_TIMES"
	propCheckImmunityTime = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	propTransPreparedQOff = "TRAN_PREPARED_QUEUE_OFFSET"
	propTimerDeliverMs    = "TIMER_DELIVER_MS"
	propTimerDelaySec     = "TIMER_DELAY_SEC"
	propTimerDelayMs      = "TIMER_DELAY_MS"
)

// Transaction type bits of a message's sysFlag (protocol.md §5.3).
const (
	sysFlagTransMask     int32 = 0xC
	sysFlagTransNotType  int32 = 0x0
	sysFlagTransPrepared int32 = 0x4
	sysFlagTransCommit   int32 = 0x8
	sysFlagTransRollback int32 = 0xC
)

func transactionType(sysFlag int32) int32 { return sysFlag & sysFlagTransMask }

func resetTransactionType(sysFlag, t int32) int32 { return sysFlag&^sysFlagTransMask | t }

func retryTopicOf(group string) string { return retryTopicPrefix + group }

func dlqTopicOf(group string) string { return dlqTopicPrefix + group }

// delayLevels is messageDelayLevel parsed: index 0 is level 1.
type delayLevels []time.Duration

// maxLevel is the highest level (18 with the default table).
func (d delayLevels) maxLevel() int { return len(d) }

// clamp caps level at the highest configured one. Levels ≤ 0 mean "no delay"
// and are returned unchanged.
func (d delayLevels) clamp(level int) int {
	if level > len(d) {
		return len(d)
	}
	return level
}

// delay is the configured delay of level (1-based); one second for a level
// outside the table, as Java's computeDeliverTimestamp does.
func (d delayLevels) delay(level int) time.Duration {
	if level < 1 || level > len(d) {
		return time.Second
	}
	return d[level-1]
}

// deliverAt is the delivery time (epoch ms) of a message stored at
// storeTimestamp with the given level: the tagsCode its SCHEDULE_TOPIC_XXXX
// consume-queue unit carries.
func (d delayLevels) deliverAt(level int, storeTimestamp int64) int64 {
	return storeTimestamp + d.delay(level).Milliseconds()
}

// correctDeliverAt guards against a clock that jumped backwards or a
// tagsCode that is not a timestamp: a delivery time further away than the
// level's whole delay becomes now.
func (d delayLevels) correctDeliverAt(level int, now, deliverAt int64) int64 {
	if deliverAt > now+d.delay(level).Milliseconds() {
		return now
	}
	return deliverAt
}

// scheduleQueueID is the SCHEDULE_TOPIC_XXXX queue of a delay level.
func scheduleQueueID(level int) int32 { return int32(level - 1) }

// parseDelayLevel reads the DELAY property: 0 when absent or not a number.
func parseDelayLevel(v string) int {
	if v == "" {
		return 0 // the usual case: no strconv error to allocate
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// sendBackTarget is where CONSUMER_SEND_MSG_BACK puts a failed message
// (protocol.md §8.1 steps 5-6): to the DLQ once the message was consumed
// maxReconsume times or when the client asks for it (negative level);
// otherwise to the retry topic after delay level requested, or 3 +
// reconsumeTimes when the client leaves it to the broker (0).
func sendBackTarget(reconsumeTimes, maxReconsume, requestedLevel int32) (toDLQ bool, level int32) {
	if reconsumeTimes >= maxReconsume || requestedLevel < 0 {
		return true, 0
	}
	if requestedLevel == 0 {
		return false, 3 + reconsumeTimes
	}
	return false, requestedLevel
}

// opBody is the body of an op record for one half-queue offset: ASCII
// decimal, comma-terminated (5.x style; 4.x wrote it without the comma).
func opBody(halfQueueOffset int64) []byte {
	return append(strconv.AppendInt(nil, halfQueueOffset, 10), ',')
}

// parseOpBody reads the half-queue offsets of an op record body: decimal
// numbers separated (and optionally terminated) by commas. Anything that
// is not a number is skipped.
func parseOpBody(body []byte) []int64 {
	var out []int64
	for _, part := range strings.Split(string(body), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil || n < 0 {
			continue
		}
		out = append(out, n)
	}
	return out
}

// halfAction is what the check service does with one half message.
type halfAction int

const (
	halfWait    halfAction = iota // too young to check: stop the scan here, retry next round
	halfCheck                     // ask the producer (and re-append with one more check)
	halfDiscard                   // checked transactionCheckMax times, or too old: give up
)

// decideHalf applies the check rules of protocol.md §8.4 step 5 to a half
// message without an op record. ages are in milliseconds: now - born.
// checkTimes is its TRANSACTION_CHECK_TIMES, immunity the value of
// CHECK_IMMUNITY_TIME_IN_SECONDS ("" when absent).
func decideHalf(age int64, checkTimes, checkMax int, timeout time.Duration, reserved time.Duration, immunity string) halfAction {
	if checkTimes >= checkMax {
		return halfDiscard
	}
	if reserved > 0 && age > reserved.Milliseconds() {
		return halfDiscard
	}
	if age < 0 { // clock moved back: check now
		return halfCheck
	}
	wait := timeout.Milliseconds()
	if immunity != "" {
		wait = immunityMillis(immunity, timeout)
	}
	if age < wait {
		return halfWait
	}
	return halfCheck
}

// immunityMillis is Java's getImmunityTime: the property in seconds, but
// never less than the transaction timeout.
func immunityMillis(v string, timeout time.Duration) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n*1000 < timeout.Milliseconds() {
		return timeout.Milliseconds()
	}
	return n * 1000
}
