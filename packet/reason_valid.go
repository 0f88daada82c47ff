package packet

// codeSet is a set of reason codes, one bit per byte value.
type codeSet [4]uint64

func codesOf(cs ...ReasonCode) codeSet {
	var s codeSet
	for _, c := range cs {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *codeSet) has(c ReasonCode) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// The reason codes each v5 packet may carry (MQTT 5.0 sections 3.2.2.2,
// 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1),
// and the 3.1.1 CONNACK and SUBACK return codes. A sender "MUST use one of"
// these, so anything else is a Protocol Error.
var (
	connackCodes5 = codesOf(Success, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecific,
		UnsupportedProtocolVersion, ClientIDNotValid, BadUsernameOrPassword, NotAuthorized, ServerUnavailable,
		ServerBusy, Banned, BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
		PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved,
		ConnectionRateExceeded)
	pubackCodes = codesOf(Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecific, NotAuthorized,
		TopicNameInvalid, PacketIDInUse, QuotaExceeded, PayloadFormatInvalid) // PUBACK and PUBREC
	pubrelCodes  = codesOf(Success, PacketIDNotFound) // PUBREL and PUBCOMP
	subackCodes5 = codesOf(Success, GrantedQoS1, GrantedQoS2, UnspecifiedError, ImplementationSpecific,
		NotAuthorized, TopicFilterInvalid, PacketIDInUse, QuotaExceeded, SharedSubNotSupported,
		SubIDsNotSupported, WildcardSubsNotSupported)
	unsubackCodes = codesOf(Success, NoSubscriptionExisted, UnspecifiedError, ImplementationSpecific,
		NotAuthorized, TopicFilterInvalid, PacketIDInUse)
	disconnectCodes = codesOf(Success, DisconnectWithWill, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecific, NotAuthorized, ServerBusy, ServerShuttingDown, KeepAliveTimeout, SessionTakenOver,
		TopicFilterInvalid, TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge,
		MessageRateTooHigh, QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported,
		QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubNotSupported, ConnectionRateExceeded,
		MaximumConnectTime, SubIDsNotSupported, WildcardSubsNotSupported)
	authCodes = codesOf(Success, ContinueAuthentication, ReAuthenticate)

	// 3.1.1 3.2.2.3: return codes 6-255 are reserved.
	connackCodes4 = codesOf(Accepted, RefusedProtocolVersion, RefusedIdentifierRejected,
		RefusedServerUnavailable, RefusedBadUsernamePassword, RefusedNotAuthorized)
	// [MQTT-3.9.3-2] SUBACK return codes other than 0, 1, 2 and 0x80 are reserved.
	subackCodes4 = codesOf(Success, GrantedQoS1, GrantedQoS2, SubackFailure)
)

// checkCode reports a reason code that packet t may not carry.
func checkCode(s *codeSet, t Type, c ReasonCode) error {
	if !s.has(c) {
		return errf(ProtocolError, "%s reason code 0x%02X is not valid for this packet", t, byte(c))
	}
	return nil
}
