package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	authfile "github.com/ternmq/tern/auth/file"
)

// runPasswd is `tern passwd`, after mosquitto_passwd: it adds, changes
// and deletes users in a password file.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: tern passwd [-c] [-b] [-D] <file> <user> [password]

Adds a user to a password file, or changes the user's password. Without a
password argument it is read from standard input: one line, or typed twice
at a terminal. A password on the command line is visible to other users of
the machine (ps, shell history); prefer standard input.

`)
		fs.PrintDefaults()
	}
	create := fs.Bool("c", false, "create the file, replacing one that exists")
	useBcrypt := fs.Bool("b", false, "hash with bcrypt instead of argon2id")
	del := fs.Bool("D", false, "delete the user")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a := fs.Args()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "tern passwd: "+format+"\n", args...)
		return 1
	}
	switch {
	case len(a) < 2 || len(a) > 3:
		fs.Usage()
		return 2
	case *del && (*create || *useBcrypt || len(a) == 3):
		fmt.Fprintln(stderr, "tern passwd: -D takes a file and a user, and no -c, -b or password")
		return 2
	}
	path, user := a[0], a[1]
	if err := authfile.ValidUsername(user); err != nil {
		return fail("%v", err)
	}
	if *del {
		if err := authfile.DeleteUser(path, user); err != nil {
			return fail("%v", err)
		}
		return 0
	}
	var pw string
	if len(a) == 3 {
		pw = a[2]
	} else {
		var err error
		if pw, err = readPassword(stdin, stderr); err != nil {
			return fail("%v", err)
		}
	}
	if pw == "" {
		return fail("empty password")
	}
	algo := authfile.Argon2id
	if *useBcrypt {
		algo = authfile.Bcrypt
	}
	h, err := authfile.HashPassword(pw, algo)
	if err != nil {
		return fail("%v", err)
	}
	if *create {
		err = authfile.CreateFile(path, user, h)
	} else {
		err = authfile.SetPassword(path, user, h)
	}
	if err != nil {
		return fail("%v", err)
	}
	return 0
}

// readPassword reads the password from stdin: at a terminal it asks twice
// without echo and refuses two different answers; otherwise it reads one
// line.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(what string) (string, error) {
			fmt.Fprint(prompt, what)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			return string(b), err
		}
		return askTwice(ask)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on standard input")
		}
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// askTwice asks for the password and for it again, and refuses two
// different answers: a typo typed blind would lock the user out.
func askTwice(ask func(prompt string) (string, error)) (string, error) {
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	again, err := ask("Reenter password: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("passwords do not match")
	}
	return pw, nil
}
