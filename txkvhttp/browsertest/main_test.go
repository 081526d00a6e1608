package browsertest

import (
	"testing"

	"go.uber.org/goleak"
)

// The test server, the page's event streams and chromedp's connection to
// the browser must all be gone when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
