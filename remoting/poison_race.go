//go:build race

package remoting

// poisonReleased: under the race detector a released request frame is
// overwritten, so that a handler still using it (or a string aliasing it)
// after ReleaseRequest reads 0xdd bytes and its test fails.
const poisonReleased = true
