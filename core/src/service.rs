//! What the service is made of, for every part of the crate: which of the two application servers
//! ([`Side`], with the first segment of its routes, and the other routes), and how a file reaches
//! its recipient ([`Delivery`]), and which of a user's two connections to a server ([`Protocol`]).
//! The store layout, the HTTP file paths, the clients and the servers
//! all build on this module, which builds on nothing else.

use serde::{Deserialize, Serialize};

/// The route on which the receiver AS takes SIP from the sender AS (`message/sip` over HTTP).
pub const PEER_ROUTE: &str = "/receiver/peer";

/// The route of FT-HTTP uploads to the sender AS.
pub const UPLOAD_ROUTE: &str = "/sender/upload";

/// The route of accounts (sign-up, password changes), served by the sender AS.
pub const ACCOUNTS_ROUTE: &str = "/sender/accounts";

/// The agent the servers name in the `Warning`s they add (RFC 3261 section 20.43: a pseudonym).
pub const WARNING_AGENT: &str = "rcs-ft";

/// The `Reason` cause (RFC 3326) of the BYE that ends a delivery whose file will never be
/// complete: the upload it was arriving by ended without it, or it is gone from the store. A
/// client drops what it received of it.
pub const FILE_GONE_CAUSE: u16 = 410;

/// Which of a user's two WebSocket connections to a server: the one each message travels over, in
/// the clients and in the servers' edge requests alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SIP over WebSocket (RFC 7118; subprotocol `sip`, text messages).
    Sip,
    /// MSRP over WebSocket (RFC 7977; subprotocol `msrp`, binary messages).
    Msrp,
}

impl Protocol {
    /// The subprotocol's name, as in `Sec-WebSocket-Protocol`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sip => "sip",
            Protocol::Msrp => "msrp",
        }
    }
}

/// How a file reaches its recipient (claim 12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// The receiver AS invites the recipient and sends the file at once.
    #[default]
    Push,
    /// The receiver AS tells the recipient about the file; the recipient's INVITE (`a=recvonly` with
    /// the file's selector) is the download request.
    Pull,
}

/// Which of the two application servers: the sender AS, which takes a device's one SIP connection
/// and the files a user sends, and the receiver AS, which delivers the files a user receives. Both
/// read the one registration of a user (a binding per device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The sender AS: every device's SIP, and a user's outgoing files and chats.
    Sender,
    /// The receiver AS: a user's incoming files and chats.
    Receiver,
}

impl Side {
    /// `sender` or `receiver`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::Receiver => "receiver",
        }
    }

    /// The first path segment of the server's routes: `/sender/` or `/receiver/`.
    pub fn path_prefix(self) -> &'static str {
        match self {
            Self::Sender => "/sender/",
            Self::Receiver => "/receiver/",
        }
    }
}
