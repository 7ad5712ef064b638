// Package js serves the Stateroom browser client, stateroom.js: an ES
// module with no dependencies and no build step, embedded in the binary,
// and stateroom.css, the small stylesheet the example pages and the
// scaffold of `stateroom new` share.
//
// Mount [Handler] and [StylesheetHandler] where the page can load them,
// next to the server's routes (package server does so at /stateroom.js and
// /stateroom.css):
//
//	mux.Handle("GET /stateroom.js", js.Handler())
//	mux.Handle("GET /stateroom.css", js.StylesheetHandler())
//
//	<link rel="stylesheet" href="stateroom.css">
//	<script type="module">
//	import { connect } from "./stateroom.js";
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

var (
	//go:embed stateroom.js
	source []byte
	//go:embed stateroom.css
	stylesheet []byte
)

// CacheControl is the Cache-Control header the handlers send: browsers and
// proxies may keep the files for five minutes, then revalidate them with
// their ETag.
const CacheControl = "public, max-age=300, must-revalidate"

// Source returns the module's text.
func Source() []byte { return bytes.Clone(source) }

// Stylesheet returns stateroom.css.
func Stylesheet() []byte { return bytes.Clone(stylesheet) }

// Handler returns an http.Handler that serves the module, whatever the
// request path, to GET and HEAD requests: Content-Type
// text/javascript; charset=utf-8, [CacheControl], an ETag (If-None-Match
// gets 304) and Range support. Other methods get 405.
func Handler() http.Handler {
	return fileHandler("stateroom.js", "text/javascript; charset=utf-8", source)
}

// StylesheetHandler is [Handler] for stateroom.css (Content-Type
// text/css; charset=utf-8).
func StylesheetHandler() http.Handler {
	return fileHandler("stateroom.css", "text/css; charset=utf-8", stylesheet)
}

// fileHandler serves one embedded file; its ETag identifies this build's
// bytes, so revalidation is a 304.
func fileHandler(name, contentType string, body []byte) http.Handler {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, name+": use GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", CacheControl)
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}
