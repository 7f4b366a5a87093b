// Package test holds rmqd's end-to-end tests: the built binaries run as
// separate processes on loopback and rocketmq-client-go drives them as a
// user's application would. It also holds the architecture test that keeps
// package dependencies pointing one way (design.md §7).
package test
