// Package browsertest drives a real headless Chromium against the live
// view of package txkvhttp: the page must show a queue forming, then a
// deadlock's cycle and victim, without reloading.
//
// It is a module of its own so that chromedp stays out of txkv's go.mod.
// Run it from this directory:
//
//	apt-get install -y chromium      # Debian; or set TXKV_CHROME to a Chrome binary
//	go test -artifacts -outputdir /tmp/txkv-artifacts ./...
//
// Without a browser the test skips and says how to install one (unless
// TXKV_REQUIRE_BROWSER is set, as .ci/run sets it: then it fails). The
// screenshot it takes is saved in the test's artifact directory
// (testing.T.ArtifactDir: kept with -artifacts, under -outputdir).
package browsertest
