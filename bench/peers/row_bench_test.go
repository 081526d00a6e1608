package peers

import (
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// BenchmarkRow runs one table cell per sub-benchmark so that one cell can be profiled:
//
//	go test -run '^$' -bench 'Row/bank-10000/nosync/txkv-pessimistic' -cpuprofile cpu.out
//
// Each iteration is one 200 ms measurement; the reported ops/s is the cell's throughput, and
// for txkv on a file records/batch is the mean group-commit batch.
func BenchmarkRow(b *testing.B) {
	for _, row := range Rows(16) {
		for _, durable := range []bool{false, true} {
			for _, c := range Contenders([]txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive}) {
				if !c.runs(row, durable) {
					continue
				}
				b.Run(benchName(row, durable, c), func(b *testing.B) { benchCell(b, c, row, durable) })
			}
		}
		if strings.HasPrefix(row.Name, "bank") {
			for _, c := range memoryContenders() {
				b.Run(benchName(row, false, c), func(b *testing.B) { benchCell(b, c, row, false) })
			}
		}
	}
}

// memoryContenders are txkv in memory, with no log, for the bank rows
// (under nosync, named txkv-memory-<strategy>): beside txkv on a file
// without fsync they show what the log costs per transfer.
func memoryContenders() []Contender {
	var cs []Contender
	for _, st := range []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive} {
		cs = append(cs, Contender{Name: "txkv memory " + st.String(), Txkv: true,
			Open: func(string, bool) (Store, error) { return OpenTxkvMemory(st) }})
	}
	return cs
}

func benchCell(b *testing.B, c Contender, row Row, durable bool) {
	var ops uint64
	var el time.Duration
	var batch float64
	for i := 0; i < b.N; i++ {
		smp, err := Measure(c, row, durable, 200*time.Millisecond, uint64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		ops += smp.Ops
		el += smp.Elapsed
		batch += smp.RecordsPerBatch
	}
	b.ReportMetric(float64(ops)/el.Seconds(), "ops/s")
	if batch > 0 {
		b.ReportMetric(batch/float64(b.N), "records/batch")
	}
}

func benchName(row Row, durable bool, c Contender) string {
	r := strings.NewReplacer(", ", "-", " accounts", "", " ", "-")
	sync := "nosync"
	if durable {
		sync = "fsync"
	}
	return r.Replace(row.Name) + "/" + sync + "/" + strings.ReplaceAll(c.Name, " ", "-")
}
