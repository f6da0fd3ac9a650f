//! The edge's configuration, the per-connection state and the decisions it
//! returns (see [`super`]).

use crate::node::NodeName;
use crate::sip::flow_token::{Flow, Issuer, WsTransport};
use crate::sip::framing::CoreTransport;
use std::collections::VecDeque;

/// The Via parameter carrying the flow token in our Via entries.
pub const FLOW_PARAM: &str = "ucgf";

/// Static configuration of one edge (one route).
#[derive(Debug, Clone)]
pub struct EdgeConfig<'a> {
    /// Flow-token key: `sip.flow_token_key` (or a random one) on a single
    /// node, [`crate::sip::flow_token::cluster_key`] in a cluster. Also the
    /// key of the Via branches and To tags the edge derives.
    pub key: &'a [u8],
    /// The value drawn at this start of the process (see
    /// [`crate::sip::flow_token`]): on a single node mixed into every
    /// token's MAC, so that a token from before a restart fails like a
    /// forged one; in a cluster carried in the token, so that it gets `430`.
    pub boot: u64,
    /// This node's name in a cluster (`cluster.node`): tokens then name the
    /// node and its start (version 2); `None` on a single node.
    pub node: Option<&'a NodeName>,
    /// `host[:port]` the WebSocket clients reach us at (client-facing
    /// Record-Route entries and our Via toward clients).
    pub ws_host: &'a str,
    /// `host:port` the core reaches us at (Path, core-facing Record-Route,
    /// our Via toward the core).
    pub core_host: &'a str,
    /// Transport configured toward the core.
    pub core_transport: CoreTransport,
    /// UDP size threshold (default [`crate::sip::framing::UDP_THRESHOLD`]).
    pub udp_threshold: usize,
    /// REGISTER without `Supported: path`: `true` answers `421 Extension
    /// Required`, `false` adds Path anyway (JsSIP and SIP.js always send it).
    pub require_path_support: bool,
}

impl EdgeConfig<'_> {
    /// How this edge issues and checks flow tokens.
    pub fn tokens(&self) -> Issuer<'_> {
        Issuer {
            key: self.key,
            start: self.boot,
            node: self.node,
        }
    }
}

/// The client connection a message arrived on.
#[derive(Debug, Clone, Copy)]
pub struct FlowCtx<'a> {
    /// The flow id of the connection (see [`crate::sip::flow_token`]).
    pub flow_id: u64,
    /// `ws` or `wss`.
    pub transport: WsTransport,
    /// Peer address as text (IPv6 with or without brackets).
    pub peer_ip: &'a str,
    /// Peer port; 0 when not known (a trusted proxy's `X-Forwarded-For`
    /// gave the address only): the Via then gets no `rport`.
    pub peer_port: u16,
}

/// What to do with a message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient {
    /// Send these bytes to the configured core over `transport`.
    ToCore {
        /// The rewritten message.
        bytes: Vec<u8>,
        /// The transport (matches our Via; UDP switched to TCP when large).
        transport: CoreTransport,
    },
    /// Answer the client with this response; nothing goes to the core.
    Respond(Vec<u8>),
    /// A request (not ACK) naming a flow of another node of the cluster,
    /// or of a previous start of this one: answer the client with
    /// [`flow_gone_response`](super::flow_gone_response).
    FlowGone,
    /// Drop silently (count it).
    Drop(&'static str),
}

/// What to do with a message from a client, as decided by [`route_client`](super::route_client)
/// ([`FromClient`] plus delivery to another flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Send these bytes to the configured core over `transport`.
    ToCore {
        /// The rewritten message.
        bytes: Vec<u8>,
        /// The transport (matches our Via).
        transport: CoreTransport,
    },
    /// Send these bytes on another client's flow (RFC 5626 §5.3 "incoming"
    /// request, or the response to one). If that flow is gone: for a
    /// request, answer the sender with [`flow_gone_response`](super::flow_gone_response) (the original
    /// message; `None` for ACK); for a response, drop it.
    ToFlow {
        /// The flow named by the token.
        flow: Flow,
        /// The rewritten message.
        bytes: Vec<u8>,
    },
    /// Answer the client with this response.
    Respond(Vec<u8>),
    /// A request (not ACK) naming a flow of another node of the cluster,
    /// or of a previous start of this one: answer the client with
    /// [`flow_gone_response`](super::flow_gone_response), as when the
    /// flow of a [`ClientAction::ToFlow`] is gone.
    FlowGone,
    /// Drop silently (count it).
    Drop(&'static str),
}

/// How many INVITE branches a [`ClientState`] remembers.
pub const CLIENT_STATE_BRANCHES: usize = 64;

/// Per-connection memory of [`route_client`](super::route_client): the branches of the INVITEs
/// that went to a UDP core over TCP because of their size (RFC 3261
/// §18.1.1), so that their CANCEL and non-2xx ACK, which are small, take the
/// same transport (§9.1: "the destination address, port, and transport MUST
/// be identical"; §16.11: "CANCEL and non-Routed ACK requests MUST generate
/// the same choice as their associated INVITE"). Bounded: the
/// [`CLIENT_STATE_BRANCHES`] most recent INVITEs, oldest forgotten first; no
/// clock is needed, since an entry only matters to a CANCEL or ACK with the
/// same branch, which RFC 3261 §8.1.1.7 makes unique per transaction. A
/// forgotten entry only means the CANCEL goes over UDP as before. One per
/// WebSocket connection (the glue's adapter task owns it).
#[derive(Debug, Clone, Default)]
pub struct ClientState {
    switched: VecDeque<(String, CoreTransport)>,
}

impl ClientState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn remember(&mut self, branch: String, transport: CoreTransport) {
        if self.switched.iter().any(|(b, _)| *b == branch) {
            return;
        }
        if self.switched.len() >= CLIENT_STATE_BRANCHES {
            self.switched.pop_front();
        }
        self.switched.push_back((branch, transport));
    }

    pub(super) fn transport_of(&self, branch: &str) -> Option<CoreTransport> {
        self.switched
            .iter()
            .find(|(b, _)| b == branch)
            .map(|(_, t)| *t)
    }

    /// How many branches are remembered (at most [`CLIENT_STATE_BRANCHES`]).
    pub fn len(&self) -> usize {
        self.switched.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.switched.is_empty()
    }
}

/// What to do with a message from the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromCore {
    /// Send on this flow, if it is alive; otherwise use
    /// [`flow_gone_response`](super::flow_gone_response).
    ToClient {
        /// The flow named by the token.
        flow: Flow,
        /// The rewritten message.
        bytes: Vec<u8>,
        /// For a request other than ACK: its [`transaction_key`](super::transaction_key) as
        /// relayed (our Via on top), which the client's responses will
        /// carry; the glue remembers where the request came from under it
        /// (RFC 3261 §18.2.2). `None` for responses and ACK.
        reply_key: Option<Vec<u8>>,
    },
    /// Answer the core with this response.
    Respond(Vec<u8>),
    /// A request (not ACK) whose flow token names another node of the
    /// cluster, or a previous start of this one: the flow is not here.
    /// Answer the core with [`flow_gone_response`](super::flow_gone_response),
    /// as when the flow of a [`FromCore::ToClient`] request is gone.
    FlowGone,
    /// Drop silently (count it).
    Drop(&'static str),
}
