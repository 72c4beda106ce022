package mnnvl

import "github.com/libmnnvl/libmnnvl/bindings/go/mnnvl/internal/raw"

// Config holds the settings communicators and roots are created with (mnnvl_config_t).
// It starts with every key's default, overridden by the MNNVL_<KEY> environment variables.
type Config struct {
	h uintptr
}

// NewConfig creates a configuration and sets the given keys (nil for none), e.g.
// {"root": "10.0.0.1:29600", "job_key": "...", "timeout_ms": "30000"}.
func NewConfig(settings map[string]string) (*Config, error) {
	c := &Config{}
	if err := check(raw.Mnnvl_config_create(&c.h)); err != nil {
		return nil, err
	}
	for key, value := range settings {
		if err := c.Set(key, value); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Set sets one key; an unknown key or a bad value is an ErrInvalidArgument error and
// leaves the configuration unchanged.
func (c *Config) Set(key, value string) error {
	return check(raw.Mnnvl_config_set(c.handle(), key, value))
}

// Get reads one key ("" for keys without a value); an unknown key is an error.
func (c *Config) Get(key string) (string, error) {
	var value *string
	err := softFailure(ErrInvalidArgument, func() bool {
		value = raw.Mnnvl_config_get(c.handle(), key)
		return value != nil
	})
	if err != nil {
		return "", err
	}
	return *value, nil
}

// Close frees the configuration; closing again does nothing.
func (c *Config) Close() error {
	if c == nil {
		return nil
	}
	return release(&c.h, raw.Mnnvl_config_destroy)
}

func (c *Config) handle() uintptr {
	if c == nil {
		return 0
	}
	return c.h
}

// Root is a TCP root (the rendezvous server of the tcp bootstrap) running on a background
// thread of this process (mnnvl_root_t).
type Root struct {
	h uintptr
}

// StartRoot starts a root listening on listen ("host:port", port 0 for a free one; "" for
// this host's name and a free port). Every connection must prove cfg's job_key. Ranks join
// it with root=<Address()> and root_mode=external. It serves any number of jobs until
// Close.
func StartRoot(cfg *Config, listen string) (*Root, error) {
	r := &Root{}
	return created(r, raw.Mnnvl_root_start(cfg.handle(), listen, &r.h))
}

// Address is the "host:port" the root listens on: the job's unique id.
func (r *Root) Address() string { return raw.Mnnvl_root_address(r.h) }

// Close stops the root: ranks still connected to it fail with ErrPeerLost.
func (r *Root) Close() error {
	if r == nil {
		return nil
	}
	return release(&r.h, raw.Mnnvl_root_stop)
}
