//! Why an application server turns a request down: one enum, each variant one reason, with the
//! status code it is answered with ([`Rejection::status`]) and the text of the answer's `Warning`
//! (its `Display`). Handlers find a [`Rejection`]; [`super::common::reject`] answers a user's
//! request with it, and the receiver AS answers the sender AS's with it, so a refusal is written
//! one way.

use thiserror::Error;

use crate::ft_http;
use crate::sdp::Direction;
use crate::store::StoreError;

/// Why a server refuses a request.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Rejection {
    /// An INVITE without an SDP body (415).
    #[error("the INVITE must carry application/sdp")]
    NotSdp,
    /// An SDP body that does not parse (400).
    #[error("bad SDP: {0}")]
    BadSdp(String),
    /// An INVITE inside a dialog: sessions are never changed once set up (488).
    #[error("re-INVITE is not supported")]
    ReInvite,
    /// An offer no answer can be made to (488).
    #[error("{0}")]
    Unanswerable(String),
    /// An offer without an MSRP media line (488).
    #[error("no MSRP media in the offer")]
    NoMsrpMedia,
    /// An offer in the other direction than this server takes (488).
    #[error("this server takes a={0} file transfer offers only")]
    WrongDirection(Direction),
    /// An offer without `a=file-selector` (488).
    #[error("the offer has no a=file-selector")]
    NoFileSelector,
    /// A `sha-256` file hash of another length than 32 bytes (400).
    #[error("the sha-256 file hash is not 32 bytes")]
    BadHashLength,
    /// An `a=path` URI that does not parse (400).
    #[error("bad a=path: {0}")]
    BadPath(String),
    /// An offer without `a=path` (488).
    #[error("the offer has no a=path")]
    NoPath,
    /// A file-selector without `size:` (488).
    #[error("the file-selector has no size")]
    NoSize,
    /// An offer without `a=file-transfer-id` (488).
    #[error("the offer has no a=file-transfer-id")]
    NoTransferId,
    /// A download request that does not name the file by its SHA-256 (488).
    #[error("the file-selector must name the file by its sha-256 hash")]
    NoDigest,
    /// A peer request without a valid seal of a trusted server (403).
    #[error("the request is not sealed by a trusted server")]
    NotSealed,
    /// A peer request other than MESSAGE (405).
    #[error("only MESSAGE is taken from other servers")]
    NotMessage,
    /// A first value in another body than an FT-HTTP file-info (415).
    #[error("the body must be {}", ft_http::CONTENT_TYPE)]
    NotFileInfo,
    /// A file-info document that does not parse (400).
    #[error("bad file-info: {0}")]
    BadFileInfo(String),
    /// A first value whose URL this deployment did not sign, or no longer honours (403).
    #[error("first value refused: {0}")]
    FirstValue(String),
    /// A first value whose file is not stored (404).
    #[error("no such file is stored")]
    NotStored,
    /// A first value whose file has expired (404).
    #[error("the file has expired")]
    Expired,
    /// A request whose To has no user part (404).
    #[error("the recipient has no user part")]
    NoRecipientUser,
    /// A request whose From has no user part (400).
    #[error("the sender has no user part")]
    NoSenderUser,
    /// A recipient nobody has registered as (404).
    #[error("unknown user")]
    UnknownUser,
    /// A recipient who is not connected (480).
    #[error("the recipient is offline")]
    Offline,
    /// A recipient whose registered contact does not parse (500).
    #[error("the recipient's registration is unreadable")]
    UnreadableContact,
    /// What the store layout refuses, or failed at ([`StoreError::status`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not build its own message (500).
    #[error("{0}")]
    Internal(String),
}

impl Rejection {
    /// The status code the request is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadSdp(_)
            | Self::BadHashLength
            | Self::BadPath(_)
            | Self::BadFileInfo(_)
            | Self::NoSenderUser => 400,
            Self::NotSealed | Self::FirstValue(_) => 403,
            Self::NotStored | Self::Expired | Self::NoRecipientUser | Self::UnknownUser => 404,
            Self::NotMessage => 405,
            Self::NotSdp | Self::NotFileInfo => 415,
            Self::Offline => 480,
            Self::ReInvite
            | Self::Unanswerable(_)
            | Self::NoMsrpMedia
            | Self::WrongDirection(_)
            | Self::NoFileSelector
            | Self::NoPath
            | Self::NoSize
            | Self::NoTransferId
            | Self::NoDigest => 488,
            Self::Store(error) => error.status(),
            Self::UnreadableContact | Self::Internal(_) => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rejection_names_its_status_and_reason() {
        let too_large = Rejection::from(StoreError::FileTooLarge { size: 9, max: 1 });
        assert_eq!(too_large.status(), 413);
        assert_eq!(
            too_large.to_string(),
            "file of 9 bytes exceeds the maximum of 1"
        );
        assert_eq!(
            Rejection::WrongDirection(Direction::SendOnly).to_string(),
            "this server takes a=sendonly file transfer offers only"
        );
        assert_eq!(Rejection::Offline.status(), 480);
        assert_eq!(
            Rejection::NotFileInfo.to_string(),
            "the body must be application/vnd.gsma.rcs-ft-http+xml"
        );
    }
}
