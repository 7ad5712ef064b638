// Package js serves the Stateroom browser client, stateroom.js: an ES
// module with no dependencies and no build step, embedded in the binary.
//
// Mount [Handler] where the page can import it, next to the server's
// routes:
//
//	mux.Handle("GET /stateroom.js", js.Handler())
//
//	<script type="module">
//	import { connect } from "/stateroom.js";
//	const room = connect("lobby", { onMessage: (data) => console.log(data) });
//	room.send("hello");
//	</script>
//
// The module derives the server's WebSocket URL from the page
// (document.baseURI, so it works under a path prefix and as wss:// behind
// https), reconnects with a jittered backoff following the close-code
// table of stateroom.CloseCode, keeps a reconnection token per room in
// sessionStorage (so a reload keeps the client id), queues sends while
// reconnecting, and is an EventTarget ("message", "state", "close"). The
// folder holds a package.json, so a bundler can consume it too.
package js

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed stateroom.js
var source []byte

// etag identifies this build's module, so revalidation is a 304.
var etag = func() string {
	sum := sha256.Sum256(source)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// CacheControl is the Cache-Control header Handler sends: browsers and
// proxies may keep the module for five minutes, then revalidate it with its
// ETag.
const CacheControl = "public, max-age=300, must-revalidate"

// Source returns the module's text.
func Source() []byte { return bytes.Clone(source) }

// Handler returns an http.Handler that serves the module, whatever the
// request path, to GET and HEAD requests: Content-Type
// text/javascript; charset=utf-8, [CacheControl], an ETag (If-None-Match
// gets 304) and Range support. Other methods get 405.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "stateroom.js: use GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", CacheControl)
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "stateroom.js", time.Time{}, bytes.NewReader(source))
	})
}
