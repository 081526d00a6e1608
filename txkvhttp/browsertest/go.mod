module github.com/txkv/txkv/txkvhttp/browsertest

go 1.26.0

require (
	github.com/chromedp/chromedp v0.23.1
	github.com/txkv/txkv v0.0.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/google/btree v1.1.3 // indirect
	go.etcd.io/bbolt v1.5.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.46.0 // indirect
)

replace github.com/txkv/txkv => ../..
