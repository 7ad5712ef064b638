// Command noguest compiles but does not use the guest SDK.
package main

func main() {}
