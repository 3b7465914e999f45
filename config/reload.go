package config

import (
	"fmt"
	"reflect"
	"strings"
)

// The reload boundary is declared on the Config types themselves: every
// field carries reload:"apply" (a SIGHUP applies a new value) or
// reload:"restart" (only a restart does), and a struct's children inherit
// its class unless they carry their own. A field nobody classified is a
// programming error that TestEveryKeyHasAReloadClass catches, so adding a
// key cannot silently fall on the wrong side, as entries missing from a
// hand-kept list did.

const (
	reloadApply   = "apply"
	reloadRestart = "restart"
)

// RestartOnlyChanges lists the key paths whose values differ between the
// running config and next and that only a restart applies, sorted as the
// fields are declared. A secret read from a file is compared by content
// and named by its _file key with " (contents)", so a rotated file under
// the same path is reported too.
func RestartOnlyChanges(running, next *Config) []string {
	var out []string
	walkReload(reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem(), "", reloadApply,
		func(path string, a, b reflect.Value) {
			if !reflect.DeepEqual(a.Interface(), b.Interface()) {
				out = append(out, path)
			}
		})
	return out
}

// KeepRestartOnly returns a copy of next in which every restart-only key
// holds the running value, so that a reload applies exactly the keys it
// can and the running process stays consistent with what it built at
// start. Neither argument is modified.
func KeepRestartOnly(running, next *Config) *Config {
	out := *next
	walkReload(reflect.ValueOf(running).Elem(), reflect.ValueOf(&out).Elem(), "", reloadApply,
		func(_ string, a, b reflect.Value) { b.Set(a) })
	return &out
}

// walkReload calls restart for every restart-only leaf field (structs are
// walked, lists and maps are leaves), with its key path, the running value
// and the settable next value. Sharing a running list or map with the next
// config is safe: a loaded config is never modified.
func walkReload(a, b reflect.Value, path, inherited string, restart func(path string, a, b reflect.Value)) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		class := f.Tag.Get("reload")
		if class == "" {
			class = inherited
		}
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		p := join(path, key)
		if key == "-" {
			p = secretPath(path, t, f.Name)
		}
		fa, fb := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && !isDuration(f.Type) {
			walkReload(fa, fb, p, class, restart)
			continue
		}
		if class == reloadRestart {
			restart(p, fa, fb)
		}
	}
}

// secretPath names a secret loaded from a file (a `yaml:"-"` field) by the
// key of its file: Superset.SecretKey → "superset.secret_key_file (contents)".
func secretPath(path string, t reflect.Type, name string) string {
	if f, ok := t.FieldByName(name + "File"); ok {
		return join(path, strings.Split(f.Tag.Get("yaml"), ",")[0]) + " (contents)"
	}
	return join(path, fmt.Sprintf("(%s)", name))
}
