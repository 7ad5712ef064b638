// Package lib is not a main package.
package lib
