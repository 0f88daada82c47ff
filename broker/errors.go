package broker

import (
	"errors"
	"syscall"
)

var (
	errSlowConsumer = errors.New("client reads too slowly: write buffer limit exceeded")
	errTakenOver    = errors.New("session taken over by a new connection")
	errKicked       = errors.New("disconnected by an administrator")
	errShutdown     = errors.New("server shutting down")
	errNotOwner     = errors.New("client id in use by another identity")
	errFlushTimeout = errors.New("closing connection not flushed in time")
	errTooManyFiles = syscall.EMFILE
)
