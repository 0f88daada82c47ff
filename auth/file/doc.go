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
// A rule is "topic [access] <filter>" or "pattern [access] <filter>";
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
// Errors in either file name the file and line: unknown keywords, bad
// access types, invalid filters, malformed hashes, duplicate users.
package file
