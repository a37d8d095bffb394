// Command compose-check loads a Compose file with compose-go, the library `docker compose` itself uses, the way
// `docker compose --env-file FILE --profile P config` does: environment interpolation from an env file, the compose
// spec schema, normalisation, then the consistency checks (durations, `depends_on` naming a service, networks and
// volumes that exist). No Docker engine is needed, so CI can run it on machines without one.
//
// Usage:
//
//	compose-check -f docker-compose.yml -env-file .env.example -profiles "" -profiles "*"
//
// Each -profiles value is one load: a comma-separated list of profiles to enable ("" = only the services without a
// profile, "*" = every profile). The program prints one line per load and exits 0 when every load succeeds; otherwise
// it prints the failing load and compose-go's error on stderr and exits 1 (2 for a usage error).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type profileSets []string

func (p *profileSets) String() string     { return strings.Join(*p, " ") }
func (p *profileSets) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	file := flag.String("f", "docker-compose.yml", "the Compose file to load")
	envFile := flag.String("env-file", "", "env file used for interpolation (as `docker compose --env-file`)")
	var sets profileSets
	flag.Var(&sets, "profiles", "comma-separated profiles of one load; repeat for several loads (default: one load with none)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "compose-check: unexpected arguments %v\n", flag.Args())
		os.Exit(2)
	}
	if len(sets) == 0 {
		sets = profileSets{""}
	}
	for _, set := range sets {
		services, err := load(*file, *envFile, splitProfiles(set))
		if err != nil {
			fmt.Fprintf(os.Stderr, "compose-check: %s (profiles %q): %v\n", *file, set, err)
			os.Exit(1)
		}
		fmt.Printf("ok %s profiles=%q services=%s\n", *file, set, strings.Join(services, ","))
	}
}

func splitProfiles(set string) []string {
	var profiles []string
	for _, p := range strings.Split(set, ",") {
		if p = strings.TrimSpace(p); p != "" {
			profiles = append(profiles, p)
		}
	}
	return profiles
}

// load mirrors docker compose's own project loading (cmd/compose ToProject): working directory = the file's folder,
// the OS environment first, then the env file, the given profiles enabled, interpolation, normalisation and the
// consistency check on. The OS environment is kept so a variable set by the caller wins, as with docker compose.
func load(file, envFile string, profiles []string) ([]string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithOsEnv,
	}
	if envFile != "" {
		opts = append(opts, cli.WithEnvFiles(envFile))
	} else {
		opts = append(opts, cli.WithEnvFiles())
	}
	opts = append(opts,
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	options, err := cli.NewProjectOptions([]string{abs}, opts...)
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	names := project.ServiceNames()
	sort.Strings(names)
	return names, nil
}
