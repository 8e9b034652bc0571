// Command xcaddycmd turns xcaddy.json (the shape of xcaddy's Builder JSON:
// caddy_version, plugins, replacements) into the `xcaddy build` command.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type builder struct {
	CaddyVersion string `json:"caddy_version"`
	Plugins      []struct {
		ModulePath  string `json:"module_path"`
		Version     string `json:"version"`
		Replacement string `json:"replacement"`
	} `json:"plugins"`
	Replacements []struct {
		Old string `json:"old"`
		New string `json:"new"`
	} `json:"replacements"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: xcaddycmd xcaddy.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var b builder
	if err := json.Unmarshal(raw, &b); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	args := []string{"xcaddy", "build"}
	if b.CaddyVersion != "" {
		args = append(args, b.CaddyVersion)
	}
	for _, p := range b.Plugins {
		w := p.ModulePath
		if p.Version != "" {
			w += "@" + p.Version
		}
		if p.Replacement != "" {
			w += "=" + p.Replacement
		}
		args = append(args, "--with", w)
	}
	for _, r := range b.Replacements {
		args = append(args, "--replace", r.Old+"="+r.New)
	}
	fmt.Println(strings.Join(args, " "))
}
