package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func runEchoServer(args []string) error {
	wantArgs(args, 1)
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}

	// Closing the listener is what ends the accept loop; connections still
	// open are closed by the exit.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		l.Close()
	}()

	fmt.Printf("listening on %s\n", l.Addr())
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			// Out of descriptors, most likely: back off and go on, as
			// net/http's server does, rather than spin or drop the rest.
			fmt.Fprintf(os.Stderr, "go-peer echo-server: accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go echo(c)
	}
}

// echo writes back whatever it reads until the peer closes. Not io.Copy(c, c):
// from one TCP connection to another, that splices through a pipe on Linux,
// and the other peers echo from a 64 KiB user buffer.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
