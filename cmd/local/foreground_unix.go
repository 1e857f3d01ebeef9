//go:build unix

package main

import (
	"os/signal"
	"syscall"
	"unsafe"
)

// foreground makes the runner the terminal's foreground process group when it was started in
// the foreground of one (make run from a shell), and returns what gives the terminal back.
//
// A terminal's Ctrl-C interrupts its whole foreground group: under `make run` that is make too,
// and GNU make always ends by the interrupt it receives (after its child), so the shell would
// see a failure however cleanly the runner stopped. In a group of its own, holding the
// terminal, the runner alone gets the Ctrl-C, stops, and exits 0; make then exits 0 as well.
// Without a terminal (tests, CI) it does nothing.
func foreground() (restore func()) {
	const tty = 0 // standard input
	old, err := tcgetpgrp(tty)
	if err != nil || old != syscall.Getpgrp() {
		return func() {}
	}
	// A process in a background group that changes the foreground group is sent SIGTTOU.
	signal.Ignore(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		return func() {}
	}
	if err := tcsetpgrp(tty, syscall.Getpgrp()); err != nil {
		syscall.Setpgid(0, old)
		return func() {}
	}
	return func() { tcsetpgrp(tty, old) }
}

func tcgetpgrp(fd int) (int, error) {
	var pgid int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(syscall.TIOCGPGRP), uintptr(unsafe.Pointer(&pgid))); e != 0 {
		return 0, e
	}
	return int(pgid), nil
}

func tcsetpgrp(fd, pgid int) error {
	p := int32(pgid)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(syscall.TIOCSPGRP), uintptr(unsafe.Pointer(&p))); e != 0 {
		return e
	}
	return nil
}
