package js_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stateroom-go/stateroom/client/js"
)

func TestHandler(t *testing.T) {
	testFileHandler(t, js.Handler(), "/stateroom.js", "text/javascript; charset=utf-8", js.Source(), "export function connect(")
}

func TestStylesheetHandler(t *testing.T) {
	testFileHandler(t, js.StylesheetHandler(), "/stateroom.css", "text/css; charset=utf-8", js.Stylesheet(), ".sr-status")
}

// testFileHandler checks one handler of an embedded file: its headers,
// body, revalidation, HEAD and the refusal of other methods.
func testFileHandler(t *testing.T, h http.Handler, path, contentType string, body []byte, mark string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET: %d", rec.Code)
	}
	for k, want := range map[string]string{
		"Content-Type":  contentType,
		"Cache-Control": js.CacheControl,
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !bytes.Equal(rec.Body.Bytes(), body) || !bytes.Contains(rec.Body.Bytes(), []byte(mark)) {
		t.Fatalf("body is not %s (%d bytes)", path, rec.Body.Len())
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", path, nil))
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}
