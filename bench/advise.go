package bench

import "github.com/txkv/txkv"

// Profile is a workload described by the decision guide's six questions.
type Profile = txkv.Workload

// Advice is the guide's recommendation and the rules that fired.
type Advice = txkv.Advice

// Advise applies the guide's flowchart (txkv.Advise).
func Advise(w Profile) Advice { return txkv.Advise(w) }
