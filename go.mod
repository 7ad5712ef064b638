module github.com/stateroom-go/stateroom

go 1.26.0
