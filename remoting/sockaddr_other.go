//go:build !unix

package remoting

func sockName(int) (string, bool) { return "", false }
