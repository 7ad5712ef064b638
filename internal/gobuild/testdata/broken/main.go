// Command broken does not compile: the tests check the compiler's message
// reaches the caller as printed.
package main

func main() { undefinedOnPurpose() }
