package lockmgr

import "runtime"

func runtimeYield() { runtime.Gosched() }
