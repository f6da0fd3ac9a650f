//! A cluster node's short name (issue 17), as BOSH sids
//! ([`crate::bosh::sid`]) and SIP flow tokens ([`crate::sip::flow_token`])
//! carry it.

use core::fmt;

/// Longest node name.
pub const NODE_NAME_MAX: usize = 16;

/// A node's short name: 1 to [`NODE_NAME_MAX`] characters from `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(String);

/// Why a text is not a [`NodeName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    /// Empty.
    #[error("a node name cannot be empty")]
    Empty,
    /// More than [`NODE_NAME_MAX`] characters.
    #[error("a node name has at most 16 characters")]
    TooLong,
    /// A character outside `[a-z0-9-]`.
    #[error("a node name uses only lowercase letters a-z, digits 0-9 and `-`")]
    BadCharacter,
}

impl NodeName {
    /// Validates a node name.
    pub fn parse(s: &str) -> Result<NodeName, NodeNameError> {
        if s.is_empty() {
            return Err(NodeNameError::Empty);
        }
        if s.len() > NODE_NAME_MAX {
            return Err(NodeNameError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(NodeNameError::BadCharacter);
        }
        Ok(NodeName(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
