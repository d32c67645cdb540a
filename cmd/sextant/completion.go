package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is a command or subcommand, for completion.
type command struct {
	name, summary string
	subs          []command
}

// commandTree is every command and subcommand that dispatch knows.
var commandTree = []command{
	{"serve", "run the services", nil},
	{"property", "manage properties", []command{
		{"create", "create a property", nil},
		{"list", "list the properties", nil},
		{"get", "show a property", nil},
		{"update", "change a property's settings", nil},
		{"delete", "delete a property", nil},
		{"delete-user", "delete a user's data (GA4's User Deletion API)", nil},
		{"key", "manage a property's API keys", []command{
			{"list", "list a property's keys", nil},
			{"create", "create a key", nil},
			{"rotate", "replace a key", nil},
			{"revoke", "revoke a key", nil},
		}},
	}},
	{"kafka", "Kafka topics (distributed mode)", []command{{"init", "create the event topic", nil}}},
	{"migrate", "create the CQL keyspace and tables (distributed mode)", nil},
	{"admin-key", "admin keys", []command{{"create", "write an admin key to the store", nil}}},
	{"geoip", "the city database", []command{{"fetch", "fetch the city database", nil}}},
	{"projection", "manage projection versions", []command{
		{"list", "list the versions", nil},
		{"status", "a projection's progress", nil},
		{"replay", "build a new version from the log", nil},
		{"activate", "make a version the one reports read", nil},
		{"rollback", "make the previous version active again", nil},
		{"delete", "delete a version", nil},
	}},
	{"context", "named servers and their keys", []command{
		{"set", "create or change a context", nil},
		{"use", "make a context the current one", nil},
		{"list", "list the contexts", nil},
		{"show", "what a command would use, and from where", nil},
		{"delete", "delete a context", nil},
	}},
	{"loadgen", "synthetic traffic for benchmarks", nil},
	{"completion", "a shell completion script", []command{
		{"bash", "bash completion", nil},
		{"zsh", "zsh completion", nil},
		{"fish", "fish completion", nil},
	}},
	{"version", "print the version", nil},
	{"help", "a command's usage", nil},
}

const completionUsage = `Usage: sextant completion bash|zsh|fish

Prints a completion script of sextant's commands, subcommands and flags:
  bash:  source <(sextant completion bash)    (in ~/.bashrc)
  zsh:   source <(sextant completion zsh)     (in ~/.zshrc)
  fish:  sextant completion fish | source     (in ~/.config/fish/config.fish)
`

// compNode is a point of the command line where completion offers words:
// the subcommands of a command, or the flags of a leaf.
type compNode struct {
	path     string // "" at the top, "property key" …
	words    []string
	summary  map[string]string // of each word
	valueOpt []string          // the leaf's flags that take a value
}

func completionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if slices.ContainsFunc(args, isHelp) {
		return groupHelp(completionUsage)
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, completionUsage)
		return errUsage
	}
	nodes, err := completionNodes(ctx)
	if err != nil {
		return err
	}
	switch args[0] {
	case "bash":
		writeBash(stdout, nodes)
	case "zsh":
		fmt.Fprint(stdout, "#compdef sextant\n# zsh completion for sextant: source <(sextant completion zsh)\nwhence compdef >/dev/null || { autoload -U +X compinit && compinit }\nautoload -U +X bashcompinit && bashcompinit\n")
		writeBash(stdout, nodes)
	case "fish":
		writeFish(stdout, nodes)
	default:
		fmt.Fprintf(stderr, "completion: unknown shell %q\n%s", args[0], completionUsage)
		return errUsage
	}
	return nil
}

// completionNodes walks commandTree; a leaf's flags are those its --help
// answer holds.
func completionNodes(ctx context.Context) ([]compNode, error) {
	var nodes []compNode
	var walk func(path []string, cmds []command) error
	walk = func(path []string, cmds []command) error {
		n := compNode{path: strings.Join(path, " "), summary: map[string]string{}}
		for _, c := range cmds {
			n.words = append(n.words, c.name)
			n.summary[c.name] = c.summary
		}
		nodes = append(nodes, n)
		for _, c := range cmds {
			p := append(slices.Clone(path), c.name)
			if len(c.subs) > 0 {
				if err := walk(p, c.subs); err != nil {
					return err
				}
				continue
			}
			leaf, err := leafNode(ctx, p)
			if err != nil {
				return err
			}
			nodes = append(nodes, leaf)
		}
		return nil
	}
	return nodes, walk(nil, commandTree)
}

// leafNode asks the command path for its help, and takes its flags.
func leafNode(ctx context.Context, path []string) (compNode, error) {
	n := compNode{path: strings.Join(path, " "), summary: map[string]string{}}
	switch path[0] {
	case "help": // sextant help COMMAND
		for _, c := range commandTree {
			n.words = append(n.words, c.name)
			n.summary[c.name] = c.summary
		}
		return n, nil
	case "completion":
		return n, nil
	}
	err := dispatch(ctx, append(slices.Clone(path), "--help"), io.Discard, io.Discard)
	var h *helpError
	if !errors.As(err, &h) {
		return n, fmt.Errorf("completion: %s --help: %w", n.path, err)
	}
	if h.flags == nil {
		return n, nil
	}
	h.flags.VisitAll(func(fl *flag.Flag) {
		opt := "--" + fl.Name
		n.words = append(n.words, opt)
		n.summary[opt] = fl.Usage
		if flagType(fl) != "" {
			n.valueOpt = append(n.valueOpt, opt)
		}
	})
	n.words = append(n.words, "--help")
	n.summary["--help"] = "print the usage"
	return n, nil
}

// writeBash writes a bash completion function: the words before the
// cursor that are not flags name a node, which offers its words; after a
// flag that takes a value, file names.
func writeBash(w io.Writer, nodes []compNode) {
	var paths, values []string
	for _, n := range nodes {
		if n.path != "" {
			paths = append(paths, shQuote(n.path))
		}
		for _, v := range n.valueOpt {
			if !slices.Contains(values, v) {
				values = append(values, v)
			}
		}
	}
	fmt.Fprintf(w, `# bash completion for sextant: source <(sextant completion bash)
_sextant() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local path="" next w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        [[ $w == -* ]] && continue
        next="${path:+$path }$w"
        case "$next" in
        %s) path="$next" ;;
        esac
    done
    if [[ $cur != -* ]]; then
        case "$prev" in
        %s)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        esac
    fi
    local words=""
    case "$path" in
`, strings.Join(paths, " | "), strings.Join(values, " | "))
	for _, n := range nodes {
		fmt.Fprintf(w, "    %s) words=%s ;;\n", shQuote(n.path), shQuote(strings.Join(n.words, " ")))
	}
	fmt.Fprint(w, `    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _sextant sextant
`)
}

// writeFish writes fish completions: each node's words are offered where
// the command line's words that are not flags name it.
func writeFish(w io.Writer, nodes []compNode) {
	var paths []string
	for _, n := range nodes {
		if n.path != "" {
			paths = append(paths, shQuote(n.path))
		}
	}
	fmt.Fprintf(w, `# fish completion for sextant: sextant completion fish | source
set -g __sextant_paths %s
function __sextant_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l path ''
    for w in $words
        string match -q -- '-*' $w; and continue
        set -l next (string trim -- "$path $w")
        contains -- $next $__sextant_paths; and set path $next
    end
    echo $path
end
function __sextant_at
    set -l p (__sextant_path)
    test "$p" = "$argv[1]"
end
complete -c sextant -f
`, strings.Join(paths, " "))
	for _, n := range nodes {
		cond := shQuote(`__sextant_at "` + n.path + `"`) // paths are plain words
		for _, word := range n.words {
			desc := shQuote(shortHelp(n.summary[word]))
			name, isFlag := strings.CutPrefix(word, "--")
			switch {
			case !isFlag:
				fmt.Fprintf(w, "complete -c sextant -n %s -a %s -d %s\n", cond, shQuote(word), desc)
			case slices.Contains(n.valueOpt, word):
				fmt.Fprintf(w, "complete -c sextant -n %s -l %s -r -F -d %s\n", cond, name, desc)
			default:
				fmt.Fprintf(w, "complete -c sextant -n %s -l %s -d %s\n", cond, name, desc)
			}
		}
	}
}

// shQuote quotes s for sh and fish, in single quotes.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shortHelp is the start of a flag's help, up to its first clause.
func shortHelp(s string) string {
	if i := strings.IndexAny(s, ";(:"); i > 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 60 {
		s = string(r[:59]) + "…"
	}
	return s
}
