//! What an XMPP client and its transport (WebSocket, TCP or BOSH) say to
//! each other over their pair of channels.

/// To the transport.
#[derive(Debug)]
pub enum Out {
    /// Open the stream (WebSocket `<open/>`, TCP stream header; nothing
    /// for BOSH, whose session creation opened it).
    Open,
    /// A stanza or nonza, serialized.
    Stanza(String),
    /// Restart the stream after SASL success.
    Restart,
    /// Close the stream (and the session).
    Close,
}

/// From the transport.
#[derive(Debug)]
pub enum In {
    /// The server opened its stream (`<open/>`, stream header).
    Open,
    /// One top-level element, as received.
    Element(Vec<u8>),
    /// The stream ended; with a reason when it was not asked for.
    End(Option<String>),
    /// A transport failure.
    Error(String),
}
