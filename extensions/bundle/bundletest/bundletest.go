// Package bundletest builds .supx bundles for tests, good and hostile.
package bundletest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io/fs"
	"time"
)

// Entry is one zip entry.
type Entry struct {
	Name    string
	Data    []byte
	Store   bool        // no compression
	Mode    fs.FileMode // 0: regular 0644
	Comment string
}

// Built is the modification time every entry gets unless Zip is told
// otherwise.
var Built = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Zip writes the entries in order (duplicates kept).
func Zip(entries ...Entry) []byte {
	return ZipAt(Built, entries...)
}

// ZipAt is Zip with entries modified at t.
func ZipAt(t time.Time, entries ...Entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: t}
		if e.Store {
			h.Method = zip.Store
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			panic(err)
		}
		if _, err := w.Write(e.Data); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Manifest returns a manifest.json for publisher.name at version, with
// a frontend whose remote entry is remoteEntry.js.
func Manifest(publisher, name, version string) map[string]any {
	return map[string]any{
		"id": publisher + "." + name, "publisher": publisher, "name": name,
		"displayName": "Test " + name, "version": version,
		"frontend": map[string]any{"remoteEntry": "remoteEntry.js", "moduleFederationName": publisher + "_" + name},
	}
}

// JSON marshals v.
func JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Valid is a loadable bundle: manifest, remote entry, one backend file
// unless backend is empty.
func Valid(m map[string]any, remoteEntry []byte, backend map[string][]byte) []byte {
	es := []Entry{{Name: "manifest.json", Data: JSON(m)}, {Name: "frontend/dist/remoteEntry.js", Data: remoteEntry}}
	for n, d := range backend {
		es = append(es, Entry{Name: "backend/src/" + n, Data: d})
	}
	return Zip(es...)
}
