package packet

// UserProperty is one v5 User Property name/value pair; order is kept.
type UserProperty struct {
	Key, Value string
}

// Properties holds the v5 properties of any packet. A pointer field is nil
// when the property is absent, so that "absent" and "zero" differ where the
// specification gives them different meanings.
type Properties struct {
	PayloadFormat        *byte          // 0x01
	MessageExpiry        *uint32        // 0x02
	ContentType          string         // 0x03
	ResponseTopic        string         // 0x08
	CorrelationData      []byte         // 0x09
	SubscriptionIDs      []uint32       // 0x0B, repeatable in PUBLISH
	SessionExpiry        *uint32        // 0x11
	AssignedClientID     string         // 0x12
	ServerKeepAlive      *uint16        // 0x13
	AuthMethod           string         // 0x15
	AuthData             []byte         // 0x16
	RequestProblemInfo   *byte          // 0x17
	WillDelay            *uint32        // 0x18
	RequestResponseInfo  *byte          // 0x19
	ResponseInfo         string         // 0x1A
	ServerReference      string         // 0x1C
	ReasonString         string         // 0x1F
	ReceiveMaximum       *uint16        // 0x21
	TopicAliasMaximum    *uint16        // 0x22
	TopicAlias           *uint16        // 0x23
	MaximumQoS           *byte          // 0x24
	RetainAvailable      *byte          // 0x25
	User                 []UserProperty // 0x26
	MaximumPacketSize    *uint32        // 0x27
	WildcardSubAvailable *byte          // 0x28
	SubIDAvailable       *byte          // 0x29
	SharedSubAvailable   *byte          // 0x2A
}
