// Package conformance keeps docs/conformance.md honest. The table there
// has one row per normative statement of MQTT 3.1.1 and of MQTT 5.0; the
// test in this package reads it beside the code and fails when
//
//   - a [MQTT-x.y.z-n] tag in a .go file has no row (in either version),
//   - the rows of a version are out of spec order or repeat an id,
//   - a row names a file, function or test that does not exist,
//   - a row says "enforced" but names no test,
//   - a test named on a row does not mention the row's id (in its body or
//     the comment above it), so that the link stays mechanical,
//   - the totals in README.md differ from the ones the table gives.
//
// Run it with -v to see the totals. With CONFORMANCE_FIX=1 it rewrites the
// README totals and adds a "// Checks [MQTT-...]" line above each test that
// a row names but that does not mention the id yet; everything else it
// reports with file:line so that the row is quick to add or mend.
package conformance
