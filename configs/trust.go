package configs

import "path/filepath"

// Pinning modes (Pinning.Mode, Upstream.Pinning).
const (
	// PinningOff ignores the lock file.
	PinningOff = "off"
	// PinningWarn logs, audits and counts a tool whose contract differs
	// from the lock file, and leaves it callable.
	PinningWarn = "warn"
	// PinningEnforce quarantines such a tool: hidden from lists, its calls
	// refused, until an operator approves the new contract.
	PinningEnforce = "enforce"
)

// What pinning does with a tool the lock file does not know
// (Pinning.NewTools).
const (
	// NewToolsAllow lets an unknown tool through (counted and audited
	// under warn and enforce).
	NewToolsAllow = "allow"
	// NewToolsQuarantine holds an unknown tool under enforce as it holds a
	// changed one.
	NewToolsQuarantine = "quarantine"
)

// DefaultLockFile is the lock file's name beside the configuration file.
const DefaultLockFile = "mcpgw.lock"

// Pinning pins each tool's contract (its name, description, input and
// output schemas and annotations) to a digest recorded in a lock file,
// written by `mcpgw tools pin` from the live catalog. A tool whose
// contract changes afterwards (a "rug pull": the description or schema an
// agent trusted replaced with instructions that steer it) is reported
// under warn and quarantined under enforce until `mcpgw tools approve` or
// the admin API approves the new contract. docs/policy.md has the lock
// file's format and a worked example.
type Pinning struct {
	// Mode is the default for upstreams that set no pinning of their own:
	// off, warn or enforce. Default off.
	Mode string `mapstructure:"mode" yaml:"mode"`
	// LockFile is the lock file's path. Empty, the default, means
	// mcpgw.lock in the configuration file's directory; a relative path is
	// resolved against the working directory, as secret files are.
	LockFile string `mapstructure:"lock_file" yaml:"lock_file,omitempty"`
	// NewTools is what happens under enforce to a tool the lock file does
	// not know: allow or quarantine. Default allow.
	NewTools string `mapstructure:"new_tools" yaml:"new_tools"`
}

func (p *Pinning) setDefaults() {
	setDefault(&p.Mode, PinningOff)
	setDefault(&p.NewTools, NewToolsAllow)
}

// LockFilePath is where the lock file of the configuration loaded from
// configPath lives.
func (c *Config) LockFilePath(configPath string) string {
	if c.Pinning.LockFile != "" {
		return c.Pinning.LockFile
	}
	return filepath.Join(filepath.Dir(configPath), DefaultLockFile)
}

// PinningMode is the pinning mode in force for upstream u: its own, or
// the top-level default.
func (c *Config) PinningMode(u *Upstream) string {
	if u.Pinning != "" {
		return u.Pinning
	}
	if c.Pinning.Mode == "" {
		return PinningOff
	}
	return c.Pinning.Mode
}

func (v *validator) pinning(p *Pinning) {
	v.pinningMode("pinning.mode", p.Mode)
	switch p.NewTools {
	case "", NewToolsAllow, NewToolsQuarantine:
	default:
		v.add("pinning.new_tools", "%q must be allow or quarantine", p.NewTools)
	}
}

func (v *validator) pinningMode(path, mode string) {
	switch mode {
	case "", PinningOff, PinningWarn, PinningEnforce:
	default:
		v.add(path, "%q must be off, warn or enforce", mode)
	}
}

// upstreamTrust checks an upstream's argument checks and pinning mode.
func (v *validator) upstreamTrust(p string, u *Upstream) {
	v.globs(p+".check_arguments", u.CheckArguments)
	v.pinningMode(p+".pinning", u.Pinning)
}
