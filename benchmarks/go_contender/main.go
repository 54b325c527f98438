// Command go_contender drives the official Go library, pusher-http-go v5, against the null
// server of bench_throughput.py, so its rows sit in the same table as the Python and Node ones.
//
// It is built by bench_throughput.py (GOPATH mode, offline) against a pusher-http-go source tree
// given with PUSHER_HTTP_GO_SRC or --go-src; that source is never part of this repository.
//
//	go_contender -port N -mode single|batch|bulk [-seconds 1] [-warmup 0.2]
//	             [-goroutines 4] [-batch 10] [-data '{"text":"hello world","n":42}']
//
// Modes: single = one Trigger at a time; batch = one TriggerBatch of -batch events at a time;
// bulk = -goroutines goroutines, each looping TriggerBatch of -batch events, one shared Client.
// Prints one JSON line {"mode","requests","events","seconds","cpu_s"}, where cpu_s is this
// process's user+system time over the measured loop (getrusage), as node_trigger.js does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	pusher "github.com/pusher/pusher-http-go/v5"
)

type result struct {
	Mode     string  `json:"mode"`
	Requests int64   `json:"requests"`
	Events   int64   `json:"events"`
	Seconds  float64 `json:"seconds"`
	CPUS     float64 `json:"cpu_s"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail(err)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_contender:", err)
	os.Exit(1)
}

// worker sends until the deadline and reports its own counts, so the goroutines share nothing
// but the Client (and its connection pool).
func worker(send func() (int64, error), until time.Time) (requests, events int64) {
	for time.Now().Before(until) {
		n, err := send()
		if err != nil {
			fail(err)
		}
		requests++
		events += n
	}
	return requests, events
}

// run starts g workers that stop at now+d and returns their summed counts and the elapsed time.
func run(send func() (int64, error), g int, d time.Duration) (requests, events int64, elapsed time.Duration) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	t0 := time.Now()
	until := t0.Add(d)
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, e := worker(send, until)
			mu.Lock()
			requests += r
			events += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return requests, events, time.Since(t0)
}

func main() {
	port := flag.Int("port", 0, "null server port on 127.0.0.1")
	mode := flag.String("mode", "single", "single, batch or bulk")
	seconds := flag.Float64("seconds", 1.0, "length of the measured loop")
	warmup := flag.Float64("warmup", 0.2, "length of the unmeasured loop before it")
	goroutines := flag.Int("goroutines", 4, "senders in bulk mode")
	batchSize := flag.Int("batch", 10, "events per TriggerBatch")
	dataJSON := flag.String("data", `{"text":"hello world","n":42}`, "event data (a JSON object)")
	appID := flag.String("app-id", "123456", "app id")
	key := flag.String("key", "bench-key", "app key")
	secret := flag.String("secret", "bench-secret", "app secret")
	flag.Parse()
	if *port <= 0 {
		fail(fmt.Errorf("-port is required"))
	}

	// Decoded into a map, as an application holding dynamic data would: the library then
	// encodes it on every call, like the Python and Node contenders do with their dicts.
	var data map[string]interface{}
	if err := json.Unmarshal([]byte(*dataJSON), &data); err != nil {
		fail(fmt.Errorf("-data: %w", err))
	}

	g := 1
	if *mode == "bulk" {
		g = *goroutines
	}
	// The default transport keeps only 2 idle connections per host; a throughput-minded user
	// raises that to the number of senders so every goroutine keeps its keep-alive connection.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if g > transport.MaxIdleConnsPerHost {
		transport.MaxIdleConnsPerHost = g
	}
	client := pusher.Client{
		AppID:      *appID,
		Key:        *key,
		Secret:     *secret,
		Host:       fmt.Sprintf("127.0.0.1:%d", *port),
		Secure:     false,
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: transport},
	}

	batch := make([]pusher.Event, *batchSize)
	for i := range batch {
		batch[i] = pusher.Event{Channel: fmt.Sprintf("bench-%d", i), Name: "ev", Data: data}
	}
	var send func() (int64, error)
	switch *mode {
	case "single":
		send = func() (int64, error) { return 1, client.Trigger("bench", "ev", data) }
	case "batch", "bulk":
		send = func() (int64, error) {
			_, err := client.TriggerBatch(batch)
			return int64(len(batch)), err
		}
	default:
		fail(fmt.Errorf("-mode %q: want single, batch or bulk", *mode))
	}

	run(send, g, time.Duration(*warmup*float64(time.Second)))
	cpu0 := cpuSeconds()
	requests, events, elapsed := run(send, g, time.Duration(*seconds*float64(time.Second)))
	cpu := cpuSeconds() - cpu0
	out, err := json.Marshal(result{*mode, requests, events, elapsed.Seconds(), cpu})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
	transport.CloseIdleConnections()
}
