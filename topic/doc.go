// Package topic validates MQTT topic names and topic filters and indexes
// subscriptions in a trie for matching published messages.
//
// A topic name is what a PUBLISH carries ("sport/tennis/player1"); a topic
// filter is what a SUBSCRIBE carries and may hold the wildcards '+' (exactly
// one level, possibly empty) and '#' (the rest of the levels, including none,
// so "sport/#" matches "sport"). Levels are separated by '/'; empty levels are
// real levels ("/finance" has two). Matching compares bytes: no
// normalization, case folding or Unicode processing [MQTT-4.7.3-4].
//
// Names beginning with '$' ($SYS/...) are not matched by filters beginning
// with a wildcard [MQTT-4.7.2-1]; "$SYS/#" matches them.
//
// A shared subscription (MQTT 5.0, section 4.8.2; many brokers accept it on
// 3.1.1 too, which is the broker's choice) has the filter
// "$share/{group}/{filter}". ValidateFilter accepts it, ParseShared splits
// it, and Trie stores it as a member of the group identified by the pair
// (group, filter), not as a plain subscription. Match and the other
// single-filter helpers treat a filter literally; call ParseShared first to
// match the inner filter of a shared subscription.
//
// Validation is separate from matching: Match and Trie assume their inputs
// passed ValidateName and ValidateFilter, as the broker checks them once
// when the packet arrives.
//
// Trie is safe for concurrent use. Its Match does not allocate, so the
// per-message cost of routing is a walk over the levels of the name.
package topic
