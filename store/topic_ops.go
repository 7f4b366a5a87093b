package store

import (
	"bytes"

	"go.uber.org/zap"
)

// Topic operations of DLedger mode that change the consume queues
// themselves (today: deletion, see DeleteTopics) travel as records on
// TopicOpsTopic so that every replica applies them at the same point of
// the log. The leader's append hook resets the queue-offset counters of
// the deleted topics when it places the record (puts placed after it start
// at 0); the dispatcher removes the topics' consume queues when it reaches
// the record, on every replica and again when a restart re-dispatches.
//
// Body: one op byte, then the topic names separated by '\n'.

// TopicOpsTopic carries topic operations (queue 0).
const TopicOpsTopic = "rmqd_SYS_TOPIC_OPS"

const topicOpDelete = 1

// isStoreTopic: topics the store itself writes and reads back at restart;
// they are never listed by Topics nor removed by DeleteTopics.
func isStoreTopic(t string) bool {
	return t == SystemTopic || t == UpgradeTopic || t == TopicOpsTopic
}

// topicOpsTopics returns the topics of a topic-ops record body (nil when
// the body is not an op this binary knows).
func topicOpsTopics(body []byte) []string {
	if len(body) < 2 || body[0] != topicOpDelete {
		return nil
	}
	var out []string
	for _, t := range bytes.Split(body[1:], []byte{'\n'}) {
		if len(t) > 0 && !isStoreTopic(string(t)) {
			out = append(out, string(t))
		}
	}
	return out
}

// resetQueueOffsetsLocked drops the queue-offset counters of the topics a
// topic-ops record deletes (putState held; the record's append hook).
func (s *MessageStore) resetQueueOffsetsLocked(body []byte) {
	var v recordView
	if parseRecord(body, &v, false) != nil {
		return
	}
	topics := topicOpsTopics(v.body)
	for k := range s.putState.queueOffsets {
		for _, t := range topics {
			if k.topic == t {
				delete(s.putState.queueOffsets, k)
			}
		}
	}
}

// onTopicOpsRecord applies a topic-ops record (dispatcher, dispatchMu held).
func (s *MessageStore) onTopicOpsRecord(pos int64, body []byte) {
	topics := topicOpsTopics(body)
	if len(topics) == 0 {
		s.logger.Warn("unknown topic operation record skipped", zap.Int64("offset", pos))
		return
	}
	n := s.destroyTopicsLocked(topics)
	s.logger.Info("topics deleted by the replicated log", zap.Strings("topics", topics), zap.Int("queues", n), zap.Int64("offset", pos))
}
