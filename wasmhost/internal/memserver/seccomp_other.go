//go:build !linux

package main

import "errors"

// denyUserfaultfd: only Linux has userfaultfd, and the mapped memory.
func denyUserfaultfd() error {
	return errors.New("-no-userfaultfd is for Linux")
}
