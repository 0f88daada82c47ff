// Command htmlreport writes one HTML page comparing tern bench runs side
// by side, from their --json summaries; compare.sh --report uses it for
// Tern against Mosquitto.
//
//	htmlreport -o page.html [-title T] [-subtitle S] [-note N]...
//	    -section TITLE NAME=result.json [-x KEY=VALUE]... NAME=result.json ...
//	    -section ...
//
// Each -section starts a scenario; each NAME=FILE after it is a run (a
// column: the broker it ran against), and each -x KEY=VALUE after a run is
// a figure measured outside it (the broker's CPU, its memory) for the
// tables. A missing or empty FILE is shown as "no result". The page
// stands alone: inline CSS and SVG, no script, nothing fetched.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ternmq/tern/bench"
)

const usage = `usage: htmlreport -o page.html [-title T] [-subtitle S] [-note N]...
    -section TITLE NAME=result.json [-x KEY=VALUE]... NAME=result.json ... [-section ...]
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	r, out, err := parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "htmlreport: %v\n%s", err, usage)
		return 2
	}
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		fmt.Fprintf(stderr, "htmlreport: %v\n", err)
		return 1
	}
	if out == "" || out == "-" {
		_, err = stdout.Write(b.Bytes())
	} else {
		err = os.WriteFile(out, b.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "htmlreport: %v\n", err)
		return 1
	}
	return 0
}

// parse reads the arguments in order: flags with a value, and the runs of
// each section.
func parse(args []string) (*bench.Report, string, error) {
	r := &bench.Report{Title: "tern bench"}
	var out string
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch a {
		case "-o", "-title", "-subtitle", "-note", "-section", "-x":
			if v, err = value(); err != nil {
				return nil, "", err
			}
		case "-h", "-help", "--help":
			return nil, "", errors.New("help")
		}
		switch a {
		case "-o":
			out = v
		case "-title":
			r.Title = v
		case "-subtitle":
			r.Subtitle = v
		case "-note":
			r.Notes = append(r.Notes, v)
		case "-section":
			r.Sections = append(r.Sections, bench.ReportSection{Title: v})
		case "-x":
			k, val, ok := strings.Cut(v, "=")
			s := last(r.Sections)
			if !ok || s == nil || len(s.Runs) == 0 {
				return nil, "", fmt.Errorf("-x %q: want KEY=VALUE after a run", v)
			}
			run := &s.Runs[len(s.Runs)-1]
			run.Extra = append(run.Extra, bench.ReportField{Name: k, Value: val})
		default:
			name, file, ok := strings.Cut(a, "=")
			s := last(r.Sections)
			if strings.HasPrefix(a, "-") || !ok || s == nil {
				return nil, "", fmt.Errorf("%q: want NAME=result.json after -section", a)
			}
			res, err := load(file)
			if err != nil {
				return nil, "", err
			}
			s.Runs = append(s.Runs, bench.ReportRun{Name: name, Result: res})
		}
	}
	if len(r.Sections) == 0 {
		return nil, "", errors.New("no -section")
	}
	return r, out, nil
}

func last(s []bench.ReportSection) *bench.ReportSection {
	if len(s) == 0 {
		return nil
	}
	return &s[len(s)-1]
}

// load reads a tern bench --json summary; nil when the run left none.
func load(file string) (*bench.Result, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(bytes.TrimSpace(b)) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &res, nil
}
