// Package file authenticates clients against a password file and
// authorizes them with an ACL file, both in the spirit of Mosquitto's.
// Both files are read whole at load; Reload re-reads one atomically: the
// new table replaces the old only when the whole file is valid, so a typo
// never leaves the broker with half a policy.
//
// # Password file
//
// One user per line, "username:hash". Lines starting with '#' and blank
// lines are ignored; a username appears at most once and contains no ':'.
// Two hash forms are accepted:
//
//	alice:$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>   argon2id, PHC string form (the default)
//	bob:$2b$10$<salt+hash>                               bcrypt ($2a$, $2b$ or $2y$)
//
// argon2id salts and hashes are unpadded standard base64. New entries use
// argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane);
// HashPassword makes them and SetPassword, CreateFile and DeleteUser edit
// a file the way `tern passwd` does (other lines are kept; the file is
// replaced by rename, mode 0600).
//
// A client without a username is anonymous and accepted only when
// LoadPasswords was told to allow anonymous clients. An unknown user and a
// wrong password give the same answer, auth.ErrBadCredentials, after the
// same amount of work: an unknown name is checked against a dummy
// argon2id hash, so timing does not tell which names exist.
//
// # ACL file
//
// The file is a list of rules in sections:
//
//	# Rules before the first section apply to anonymous clients (no username).
//	topic read public/#
//
//	# Rules for the user named alice.
//	user alice
//	topic readwrite alice/#
//	topic deny alice/secret
//
//	# Rules for the client id sensor-17.
//	client sensor-17
//	topic write sensors/17/#
//
//	# Pattern lines apply to every client, wherever they are written.
//	pattern readwrite users/%u/#
//	pattern write devices/%c/status
//
// A topic rule is "topic [access] <filter>" or "pattern [access] <filter>";
// access is read, write, readwrite (the default) or deny. The filter is
// the rest of the line, so it may contain spaces and '#' (there are no
// comments at the end of a line); a filter of more than one word needs
// the access written out. "user" and "client" also take the rest of the
// line as the name. In pattern filters %u is the client's username and %c
// its client id; any other '%' sequence is an error.
//
// A client is governed by the rules of its user section (or of the
// anonymous section when it has no username), of its client-id section,
// and by all patterns. Client ids are chosen by clients, not proven: a
// client section grants what it says to whoever connects with that id, so
// use it together with authentication.
//
// Decisions:
//
//   - Publish to a topic name needs write (or readwrite) on a filter that
//     matches the name.
//   - Read, the delivery of a message (retained ones included), needs read
//     on a filter that matches the name.
//   - Subscribe to a filter needs read on a rule filter that covers every
//     topic the subscription can match ("a/#" covers "a/+/b"; "a/+" does
//     not cover "a/#"). A shared subscription "$share/g/f" is judged by f.
//   - A matching deny rule beats any allow. For Subscribe a deny rule
//     refuses the subscription when it covers the whole filter; when it
//     covers only part, the subscription is granted and the denied topics
//     are withheld at delivery, where Read is checked.
//   - No matching rule: denied.
//   - Topics starting with '$' ($SYS/...) are reachable only through rules
//     whose filter text itself starts with '$': neither a leading wildcard
//     ([MQTT-4.7.2-1]) nor a substituted %u or %c grants them.
//   - A pattern needing %u never matches a client without a username. A
//     substituted value that is empty or contains '+', '#' or '/' is never
//     read as wildcards or levels: such an allow pattern does not match, and
//     such a deny pattern denies, so an odd name cannot step around a deny.
//
// # Client ids
//
// A persistent session belongs to the identity that made it: the user, or
// the anonymous clients. By default a client may use any client id that
// no session of another identity holds. clientid lines say instead which
// ids an identity may use, and let it use them even where a session of
// another identity holds one (the session then passes to it):
//
//	# Anonymous clients may use anon-... ids only.
//	clientid anon-*
//
//	user alice
//	clientid alice
//	clientid kitchen-*
//
//	# Any id, and so any session: an operator's grant.
//	user monitor
//	clientid *
//
//	# Every user may use ids starting with their name and a dash.
//	pattern clientid %u-*
//	# Nobody may use these.
//	pattern clientid deny admin-*
//
// A rule is "clientid [allow|deny] <glob>" in a user section or before any
// section (anonymous clients), or "pattern clientid [allow|deny] <glob>"
// anywhere, for every client; allow is the default and a glob with spaces
// needs it written. In a glob '*' matches any run of characters, empty
// included; everything else is literal. In pattern globs %u is the
// username (any other '%' sequence is an error); in the others '%' is
// literal. A client section takes no clientid line: it holds rules for an
// id, it grants the id to nobody.
//
// Decision, for the rules of the client's own section and all patterns:
//
//   - A matching deny rule: the id is refused.
//   - Otherwise, if any allow rule applies, the id must match one: it is
//     granted if it does and refused if not.
//   - No allow rule applies: the default above (deny rules alone only
//     carve ids out).
//   - A %u pattern never applies to a client without a username. A
//     username that is empty or contains '*' is not substituted: such an
//     allow pattern still applies but matches nothing, and such a deny
//     pattern refuses every id.
//
// A grant covers whatever the glob matches: with "pattern clientid %u-*",
// user "ann" may also use "ann-b-1", an id of user "ann-b"'s. Where
// usernames can contain the separator, pick one they cannot or grant ids
// in user sections. Anonymous clients are not covered by %u patterns: give
// them ids of their own (as above), or they may claim a user's id first
// (the user, granted it, then takes the session over).
//
// Errors in either file name the file and line: unknown keywords, bad
// access types, invalid filters, malformed hashes, duplicate users.
package file
