package txkv_test

import (
	"context"
	"fmt"

	"github.com/txkv/txkv"
)

// Follow the changes to one key prefix as a change stream, then resume it from the last
// version processed, as a consumer restarting would.
func ExampleDB_Watch() {
	ctx := context.Background()
	db, err := txkv.Open("", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	changes := db.Watch(ctx, []byte("user/"), 0) // 0: from now on
	_ = db.Put(ctx, []byte("user/ada"), []byte("admin"))
	_ = db.Put(ctx, []byte("order/1"), []byte("not under user/"))
	_ = db.Put(ctx, []byte("user/bob"), []byte("viewer"))
	_ = db.Delete(ctx, []byte("user/ada"))

	var resume uint64
	for ev, err := range changes {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %q deleted=%v\n", ev.Key, ev.Value, ev.Deleted)
		resume = ev.Version + 1 // the resume token
		if string(ev.Key) == "user/bob" {
			break // stop, as a consumer might crash or restart here
		}
	}

	for ev, err := range db.Watch(ctx, []byte("user/"), resume) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("resumed: %s deleted=%v\n", ev.Key, ev.Deleted)
		break
	}
	// Output:
	// user/ada "admin" deleted=false
	// user/bob "viewer" deleted=false
	// resumed: user/ada deleted=true
}
