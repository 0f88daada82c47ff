package topic_test

import (
	"fmt"

	"github.com/ternmq/tern/topic"
)

func ExampleTrie() {
	type opts struct{ QoS byte }
	tr := topic.NewTrie[string, opts]()
	for _, s := range []struct {
		filter, client string
		qos            byte
	}{
		{"sport/tennis/+", "alice", 1},
		{"sport/#", "bob", 0},
		{"$share/workers/sport/tennis/+", "w1", 1},
		{"$share/workers/sport/tennis/+", "w2", 1},
	} {
		if err := topic.ValidateFilter(s.filter); err != nil {
			panic(err)
		}
		tr.Add(s.filter, s.client, opts{s.qos})
	}
	tr.Match("sport/tennis/player1",
		func(client string, o opts) { fmt.Println("deliver to", client, "at QoS", o.QoS) },
		func(group, filter string, members []topic.Member[string, opts]) {
			fmt.Println("pick one of", len(members), "in", group, "for", filter)
		})
	// Unordered output:
	// deliver to alice at QoS 1
	// deliver to bob at QoS 0
	// pick one of 2 in workers for sport/tennis/+
}

func ExampleMatch() {
	fmt.Println(topic.Match("sport/#", "sport"))
	fmt.Println(topic.Match("sport/+", "sport"))
	fmt.Println(topic.Match("+/+", "/finance"))
	fmt.Println(topic.Match("#", "$SYS/uptime"))
	// Output:
	// true
	// false
	// true
	// false
}
