package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/topic"
)

// authTimeout bounds how long an Authenticator may take.
const authTimeout = 10 * time.Second

// connect handles an accepted CONNECT packet: validation, authentication,
// session take-over, CONNACK. A non-nil error ends the connection.
func (c *conn) connect(p *packet.Connect) error {
	c.setVersion(p.ProtocolLevel)
	o := c.b.opts()
	c.announced = o
	if mps := p.Properties.MaximumPacketSize; mps != nil && c.version == packet.V5 {
		// [MQTT-3.1.2-24] nothing larger than the client's Maximum Packet
		// Size, refusals included.
		c.maxOut = int(*mps)
	}
	id, assigned := p.ClientID, ""
	if id == "" {
		// [MQTT-3.1.3-8] an empty id needs clean session in 3.1.1; 3.1
		// requires 1 to 23 characters. [MQTT-3.1.3-6] otherwise the server
		// assigns a unique id.
		if c.version == packet.V31 || (c.version == packet.V311 && !p.CleanStart) {
			return c.refuse(packet.RefusedIdentifierRejected, "empty client id without clean session")
		}
		id = newClientID()
		if c.version == packet.V5 {
			assigned = id // [MQTT-3.2.2-16] tell the client its id
		}
	}
	// [MQTT-3.1.3-5] longer ids and any UTF-8 are allowed unless limited.
	if max := c.b.opts().MaxClientIDLength; max > 0 && len(id) > max {
		return c.refuse(packet.RefusedIdentifierRejected, fmt.Sprintf("client id longer than %d bytes", max))
	}
	if p.Will != nil {
		// [MQTT-3.1.2-9] the will topic must be a valid topic name.
		if err := topic.ValidateName(p.Will.Topic); err != nil {
			return fmt.Errorf("will topic: %v: %w", err, packet.ProtocolError)
		}
		if err := checkResponseTopic(p.Will.Properties.ResponseTopic); err != nil {
			return fmt.Errorf("will: %w", err)
		}
		if p.Will.Retain && o.DisableRetain {
			if c.version == packet.V5 {
				// [MQTT-3.2.2-13] a retained will needs retain support.
				return c.refuse(packet.RetainNotSupported, "retained messages are not supported")
			}
			p.Will.Retain = false // 3.1.1 has no way to say no
		}
	}
	c.clientID = id
	// Filled in until the client is accepted, then never changed: routing
	// on other goroutines reads it through the session.
	cl := &auth.Client{
		ClientID: id, Username: p.Username, UsernameFlag: p.UsernameFlag,
		Password: p.Password, RemoteAddr: c.nc.RemoteAddr(), Version: c.version,
	}
	c.client = cl
	var authData []byte
	if name, ok := certUsername(c.nc); ok {
		// A listener that maps verified client certificates to users: the
		// certificate is the credential and its name the username, for
		// ACLs and logs; a username or password in CONNECT is ignored.
		cl.Username, cl.UsernameFlag, cl.Password = name, true, nil
		cl.CertUsername = true
	} else if c.version == packet.V5 && p.Properties.AuthMethod != "" {
		out, code, err := c.enhancedConnect(p)
		if err != nil {
			return c.refuse(code, err.Error())
		}
		authData = out
	} else if err := c.authenticate(); err != nil {
		return err
	}
	cl.Password = nil // not needed any more; do not keep secrets around
	idGrant := auth.ClientIDDefault
	if p.ClientID != "" { // an id the server made up is this client's alone
		var err error
		if idGrant, err = c.authorizeClientID(); err != nil {
			return err
		}
	}
	if p.Will != nil {
		if err := c.authorizeWill(p.Will); err != nil {
			return err
		}
	}
	c.keepAlive = p.KeepAlive
	c.connectedAt = time.Now().UnixNano()
	serverKeepAlive := false
	// The most a v5 Server Keep Alive can say is 65535 s.
	if m := min(o.MaxKeepAlive.Truncate(time.Second), 65535*time.Second); m > 0 && (c.keepAlive == 0 || c.keepAliveTime() > m) {
		if c.version != packet.V5 {
			// Before v5 the server cannot tell the client another keep
			// alive, and changing it silently would drop a client that
			// keeps to what it asked for. Refused as Mosquitto does.
			c.refused(refusedKeepAlive)
			return c.refuse(packet.RefusedIdentifierRejected, "keep alive outside the server's maximum",
				"detail", "limits.max_keep_alive; MQTT 3.1.1 cannot be told another", "keepalive", p.KeepAlive, "max_keep_alive", m)
		}
		c.keepAlive, serverKeepAlive = uint16(m/time.Second), true
	}
	c.will = p.Will

	// A session outlives its connection with clean session 0 before v5
	// (for PersistentSessionExpiry); in v5 for its Session Expiry
	// Interval, none by default [MQTT-3.1.2-23], at most MaxSessionExpiry.
	var expiry uint32
	if !p.CleanStart {
		expiry = capSeconds(neverExpires, o.PersistentSessionExpiry)
	}
	ack := &packet.Connack{}
	window := o.MaxInflight
	if c.version == packet.V5 {
		expiry = 0
		if se := p.Properties.SessionExpiry; se != nil {
			expiry = c.b.capSessionExpiry(*se)
		}
		ack.Properties = capabilities(o)
		if se := p.Properties.SessionExpiry; se != nil && expiry != *se {
			ack.Properties.SessionExpiry = &expiry // the client is told the value in force
		}
		ack.Properties.AssignedClientID = assigned
		if c.x != nil && c.x.authMethod != "" {
			ack.Properties.AuthMethod, ack.Properties.AuthData = c.x.authMethod, authData
		}
		if serverKeepAlive {
			ka := c.keepAlive
			ack.Properties.ServerKeepAlive = &ka // [MQTT-3.2.2-21] the client must use it
		}
		if p.Properties.RequestResponseInfo != nil && *p.Properties.RequestResponseInfo == 1 && c.b.opts().ResponseInformation != "" {
			ack.Properties.ResponseInfo = strings.ReplaceAll(c.b.opts().ResponseInformation, "%c", id)
		}
		// [MQTT-3.3.4-9] never more unacknowledged PUBLISH in flight than
		// the client's Receive Maximum.
		if rm := p.Properties.ReceiveMaximum; rm != nil {
			window = min(window, int(*rm))
		}
		if tam := p.Properties.TopicAliasMaximum; tam != nil {
			// [MQTT-3.3.2-11] never above the client's maximum; and no more
			// topics remembered per connection than the server allows.
			c.aliases.max = min(int(*tam), max(o.TopicAliasMaximum, 0))
		}
		c.sessionExpiry = p.Properties.SessionExpiry
	}
	if nodes := c.b.cluster; nodes != nil {
		// The id is taken over cluster-wide first: a connection with it
		// on another node is closed and its session comes here.
		ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
		release, err := nodes.Claim(ctx, c.client, idGrant == auth.ClientIDAllowed, p.CleanStart)
		cancel()
		if errors.Is(err, errNotOwner) {
			return c.refuse(packet.RefusedIdentifierRejected, errIDNotAllowed, "identity", cl.Identity(), "err", err)
		} else if err != nil {
			return c.refuse(packet.RefusedServerUnavailable, "cluster unavailable", "err", err)
		}
		defer release()
	}
	if err := c.b.attach(c, id, p.CleanStart, expiry, window, ack, idGrant == auth.ClientIDAllowed); err != nil {
		if errors.Is(err, errNotOwner) {
			// The same words as a refusal by rule: the client learns
			// neither who holds the id nor that a session exists; the
			// log says.
			return c.refuse(packet.RefusedIdentifierRejected, errIDNotAllowed, "identity", cl.Identity(), "err", err)
		}
		return err
	}
	c.b.stats.connected()
	c.b.log.Debug("client connected", "client", id, "remote", c.nc.RemoteAddr(), "version", c.version,
		"clean", p.CleanStart, "keepalive", p.KeepAlive, "session_present", ack.SessionPresent)
	for _, h := range c.b.hooks.connect {
		h.OnConnect(c.client)
	}
	return nil
}

// capSessionExpiry bounds a v5 Session Expiry Interval by MaxSessionExpiry.
func (b *Broker) capSessionExpiry(v uint32) uint32 { return capSeconds(v, b.opts().MaxSessionExpiry) }

// capSeconds bounds an interval in seconds by d; negative d: no bound.
func capSeconds(v uint32, d time.Duration) uint32 {
	if d < 0 {
		return v
	}
	return uint32(min(int64(v), int64(d/time.Second)))
}

// capabilities are the CONNACK properties that tell a v5 client what a
// server with options o supports; defaults the spec already implies are
// left out.
func capabilities(o *Options) packet.Properties {
	var p packet.Properties
	if rm := uint16(o.ReceiveMaximum); rm != 65535 {
		p.ReceiveMaximum = &rm
	}
	mps := o.MaxPacketSize
	p.MaximumPacketSize = &mps
	if o.TopicAliasMaximum > 0 {
		tam := uint16(o.TopicAliasMaximum)
		p.TopicAliasMaximum = &tam
	}
	// The availability flags default to 1; say only what is switched off.
	no := byte(0)
	if o.DisableRetain {
		p.RetainAvailable = &no
	}
	if o.DisableWildcards {
		p.WildcardSubAvailable = &no
	}
	if o.DisableSubIDs {
		p.SubIDAvailable = &no
	}
	if o.DisableShared {
		p.SharedSubAvailable = &no
	}
	return p
}

// authenticate checks the client's username and password.
func (c *conn) authenticate() error {
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	err := c.b.opts().Authenticator.Authenticate(ctx, c.client)
	cancel()
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		return c.refuse(packet.RefusedBadUsernamePassword, "bad username or password")
	case errors.Is(err, auth.ErrNotAuthorized):
		return c.refuse(packet.RefusedNotAuthorized, "not authorized")
	case err != nil:
		c.b.log.Error("authenticator failed", "client", c.clientID, "err", err)
		return c.refuse(packet.RefusedServerUnavailable, "authenticator failed")
	}
	return nil
}

// authorizeWill refuses the CONNECT of a will that could not be
// published: a will is a PUBLISH made in advance, with the same bounds and
// ACL (checked again when it goes out).
func (c *conn) authorizeWill(w *packet.Will) error {
	if err := c.b.topicLimits().Check(w.Topic); err != nil {
		code := packet.RefusedNotAuthorized
		if c.version == packet.V5 {
			code = packet.TopicNameInvalid
		}
		c.refused(refusedOther) // a bound, not the ACL, whatever 3.1.1 can say
		return c.refuse(code, "will topic: "+err.Error())
	}
	if !c.b.opts().Authorizer.Authorize(c.client, auth.Publish, w.Topic) {
		return c.refuse(packet.RefusedNotAuthorized, "not authorized to publish the will", "identity", c.client.Identity(), "topic", w.Topic)
	}
	return nil
}

const errIDNotAllowed = "client id not allowed for this user"

// authorizeClientID asks the Authorizer, when it decides about client ids
// (auth.ConnectAuthorizer), whether the client may use its id. A refusal
// is answered here; the decision is for attach, which knows whether a
// session of another identity holds the id.
func (c *conn) authorizeClientID() (auth.ClientIDDecision, error) {
	ca, ok := c.b.opts().Authorizer.(auth.ConnectAuthorizer)
	if !ok {
		return auth.ClientIDDefault, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	d, err := ca.AuthorizeClientID(ctx, c.client)
	cancel()
	switch {
	case err != nil:
		c.b.log.Error("client id authorization failed", "client", c.clientID, "err", err)
		return d, c.refuse(packet.RefusedServerUnavailable, "authorizer failed")
	case d == auth.ClientIDDenied:
		return d, c.refuse(packet.RefusedIdentifierRejected, errIDNotAllowed, "identity", c.client.Identity())
	}
	return d, nil
}

// certUsername returns the user named by the client certificate of a
// connection from a listener configured to map certificates to users
// (listener's cert_username), false when there is none.
func certUsername(nc net.Conn) (string, bool) {
	if ci, ok := nc.(interface{ CertUsername() (string, bool) }); ok {
		return ci.CertUsername()
	}
	return "", false
}

// refuse answers CONNECT with a failure code and ends the connection,
// logging one line with the client, its address, why (also told a v5
// client) and attrs (for the log only).
// [MQTT-3.2.2-4] a refusal carries session present 0; [MQTT-3.2.2-5] the
// server closes the connection after it.
func (c *conn) refuse(code packet.ReasonCode, why string, attrs ...any) error {
	c.refused(refusalOf(code))
	c.b.log.Info("connect refused", append([]any{"client", c.clientID, "remote", c.nc.RemoteAddr().String(), "reason", why}, attrs...)...)
	ack := &packet.Connack{ReasonCode: code}
	if c.version == packet.V5 {
		if v5, ok := v5ConnackCodes[code]; ok {
			ack.ReasonCode = v5
		}
		ack.Properties.ReasonString = why // allowed on CONNACK [MQTT-3.2.2-19]
		code = ack.ReasonCode
	}
	c.finish(ack)
	return fmt.Errorf("connect refused: %s: %w", why, code)
}

// refusalOf returns the statistics' reason for a refusal with a CONNACK
// code, 3.1.1 or v5.
func refusalOf(code packet.ReasonCode) refusal {
	switch code {
	case packet.RefusedBadUsernamePassword, packet.BadUsernameOrPassword:
		return refusedBadCredentials
	case packet.RefusedNotAuthorized, packet.NotAuthorized:
		return refusedNotAuthorized
	case packet.RefusedIdentifierRejected, packet.ClientIDNotValid:
		return refusedClientID
	case packet.RefusedProtocolVersion, packet.UnsupportedProtocolVersion:
		return refusedProtocolVersion
	case packet.RefusedServerUnavailable, packet.ServerUnavailable, packet.ServerBusy:
		return refusedServerUnavailable
	}
	return refusedOther
}

// v5ConnackCodes maps 3.1.1 CONNACK return codes to their v5 reason codes.
var v5ConnackCodes = map[packet.ReasonCode]packet.ReasonCode{
	packet.RefusedProtocolVersion:     packet.UnsupportedProtocolVersion,
	packet.RefusedIdentifierRejected:  packet.ClientIDNotValid,
	packet.RefusedServerUnavailable:   packet.ServerUnavailable,
	packet.RefusedBadUsernamePassword: packet.BadUsernameOrPassword,
	packet.RefusedNotAuthorized:       packet.NotAuthorized,
}

// attach gives the connection its session: a live connection holding the
// same client id is closed first [MQTT-3.1.4-2]; clean session discards
// stored state [MQTT-3.1.2-6], otherwise it is resumed [MQTT-3.1.2-4].
// CONNACK is queued before the session can receive anything, then what the
// session is owed is resent.
//
// A session belongs to the identity that made it: a client of another
// identity may neither resume, discard nor take it over (errNotOwner)
// unless granted the id explicitly, and then what the session holds is
// authorized for it anew. attach fails otherwise only when the broker is
// closing.
func (b *Broker) attach(c *conn, id string, clean bool, expiry uint32, window int, ack *packet.Connack, granted bool) error {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return errShutdown
		}
		s := b.sessions[id]
		var prev *auth.Client // the identity s belonged to
		if s != nil {
			prev = s.client.Load()
			if owner := prev.Identity(); owner != c.client.Identity() && !granted {
				b.mu.Unlock()
				return fmt.Errorf("%w (%s)", errNotOwner, owner)
			}
			if b.endLive(s) {
				continue
			}
		}
		var ended *pendingWill
		var old *session
		var t store.Ticket
		if s != nil && clean {
			// Its deletion is durable before CONNACK, like the new
			// session's writes: a crash must not bring it back.
			ended, t = b.discard(s)
			old, s, prev = s, nil, nil
		}
		// [MQTT-3.2.2-2] session present only when a session was resumed;
		// [MQTT-3.2.2-1] always 0 with clean session.
		ack.SessionPresent = s != nil
		if s == nil {
			s = newSession(b, id, false) // setPersistent stores it
			b.sessions[id] = s
		}
		s.client.Store(c.client)
		s.mu.Lock()
		b.mu.Unlock()
		c.sess = s
		var moved []*store.Outbound
		if prev != nil && prev.Identity() != c.client.Identity() {
			moved = s.takeOutbound()
		}
		s.version = c.version
		s.stopExpiry()
		s.expiry = expiry
		if s.persistent && expiry > 0 {
			// Resumed: no deadline while connected, and the interval may
			// have changed (and the owner too).
			t = max(t, s.persist(func(st store.Store) store.Ticket { return st.PutSession(s.record()) }))
		}
		t = max(t, s.setPersistent(expiry > 0))
		s.window = window
		c.after(t) // the session is stored before CONNACK says it is present
		c.sendPacket(ack)
		c.ob.mu.Lock()
		c.ob.sess = s
		c.ob.mu.Unlock()
		s.conn = c
		s.online.Store(true)
		s.resume(c)
		s.mu.Unlock()
		// The discarded session's delayed will goes out now that it ended,
		// and its shared-subscription messages find another member.
		if old != nil {
			b.redistribute(old, true)
		}
		b.publishWill(ended)
		s.redeliver(moved)
		return nil
	}
}

// endLive ends the connection of s, if it has one, as taken over
// [MQTT-3.1.4-3] and waits until it has ended: true means b.mu was
// released meanwhile and the caller looks again. b.mu must be held.
func (b *Broker) endLive(s *session) bool {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return false
	}
	b.mu.Unlock()
	c.takeOver()
	<-c.ended()
	return true
}

// detach separates a finished connection from its session. A session
// that does not outlive its connection ends; a persistent one starts its
// expiry. will (nil for none) goes out now, or after delay while the
// session lives on [MQTT-3.1.3-9].
func (b *Broker) detach(c *conn, will *Message, delay time.Duration) {
	s := c.sess
	b.mu.Lock()
	s.mu.Lock()
	end := false
	if s.conn == c {
		s.conn = nil
		s.resend = nil
		s.online.Store(false)
		if !s.persistent && b.sessions[s.id] == s {
			delete(b.sessions, s.id)
			s.gone = true
			end = true
		} else if s.persistent && !s.gone {
			if delay > 0 {
				s.startExpiry(will, delay)
				will = nil
			} else {
				s.startExpiry(nil, 0)
			}
		}
	}
	s.mu.Unlock()
	b.mu.Unlock()
	b.redistribute(s, end)
	if end {
		for _, f := range s.filters() {
			b.unsubscribe(f, s)
		}
		b.ended(s.id)
	}
	if will != nil {
		b.publishWill(&pendingWill{msg: will, from: s.id})
	}
}

// discard ends an offline session and deletes its stored state; it
// returns the session's delayed will, for the caller to publish once b.mu
// is released, and the ticket of the deletion. b.mu must be held.
func (b *Broker) discard(s *session) (*pendingWill, store.Ticket) {
	w := b.unlink(s)
	b.ended(s.id)
	return w, b.store.DeleteSession(s.id)
}

// unlink takes s out of the broker and returns its delayed will. b.mu
// must be held.
func (b *Broker) unlink(s *session) *pendingWill {
	delete(b.sessions, s.id)
	s.mu.Lock()
	s.gone = true
	s.stopExpiryTimer()
	w := s.takeWill()
	s.mu.Unlock()
	for _, f := range s.filters() {
		b.unsubscribe(f, s)
	}
	return w
}

// handOff is discard for a session that lives on on another node, will
// and queue included: with a shared store its records stay there for that
// node to load. b.mu must be held.
func (b *Broker) handOff(s *session) store.Ticket {
	var t store.Ticket
	if sh, shared := b.store.(store.Shared); shared {
		b.unlink(s)
		t = sh.Release(s.id)
	} else {
		_, t = b.discard(s)
	}
	s.mu.Lock()
	s.dropQueue()
	s.mu.Unlock()
	return t
}

// newClientID returns a unique id for a client that sent none: 21
// characters, within the 23 every server must accept.
func newClientID() string {
	var b [8]byte
	rand.Read(b[:])
	return "tern-" + hex.EncodeToString(b[:])
}
