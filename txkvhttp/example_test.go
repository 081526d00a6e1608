package txkvhttp_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/txkvhttp"
)

// Mount the live view beside your own handlers, as net/http/pprof is
// mounted; serve it on localhost (txkvhttp.Listen(":6060") binds localhost).
func ExampleHandler() {
	db, err := txkv.Open("", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	mux := http.NewServeMux()
	mux.Handle("/debug/txkv/", http.StripPrefix("/debug/txkv", txkvhttp.Handler(db)))
	// go http.Serve(ln, mux), with ln from txkvhttp.Listen("localhost:6060")

	for _, path := range []string{"/debug/txkv/", "/debug/txkv/api/locks.json"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// /debug/txkv/ 200 text/html; charset=utf-8
	// /debug/txkv/api/locks.json 200 application/json
}
