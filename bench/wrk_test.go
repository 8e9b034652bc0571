package main

import "testing"

func TestParseWrk(t *testing.T) {
	out := `Running 5s test @ http://127.0.0.1:1234/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  345.67us  12.34ms   90.00%
    Req/Sec    29.50k     1.20k   31.00k    80.00%
  Latency Distribution
     50%    1.02ms
     75%    1.20ms
     90%    1.50ms
     99%  850.00us
  146789 requests in 5.00s, 17.36MB read
Requests/sec:  29357.80
Transfer/sec:      3.47MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 29357.80 || r.P50 != 1.02 || r.P99 != 0.85 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk(out + "  Non-2xx or 3xx responses: 12\n"); err == nil {
		t.Fatal("refused requests were not reported")
	}
	if _, err := parseWrk("garbage"); err == nil {
		t.Fatal("garbage parsed")
	}
}
