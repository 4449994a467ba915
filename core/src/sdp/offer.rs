//! Offers and answers of an MSRP file transfer (RFC 5547 section 8) for clients on WebSocket
//! (RFC 7977): building the offer, and answering one.

use serde::{Deserialize, Serialize};

use super::attribute::{
    Attribute, Direction, FileDate, FileRange, FileSelector, Setup, media_type_list,
};
use super::error::{AttributeError, InputField, InputProblem, OfferRejection, SdpError};
use super::{Connection, MediaDescription, Origin, SessionDescription};
use crate::lex::{self, MediaTypeSyntax, is_token_char};

/// Who sends the file (RFC 5547 section 3 terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// The offerer sends the file: its media is `a=sendonly`.
    Push,
    /// The offerer asks for the file: its media is `a=recvonly` (RFC 5547 section 8.2.2).
    Pull,
}

impl Operation {
    /// The direction the offerer's media carries.
    pub const fn offerer_direction(self) -> Direction {
        match self {
            Self::Push => Direction::SendOnly,
            Self::Pull => Direction::RecvOnly,
        }
    }

    /// The operation an offered direction means, if it is a file transfer direction.
    pub const fn from_offer(direction: Direction) -> Option<Self> {
        match direction {
            Direction::SendOnly => Some(Self::Push),
            Direction::RecvOnly => Some(Self::Pull),
            Direction::SendRecv | Direction::Inactive => None,
        }
    }
}

/// Everything an RCS file transfer offer over MSRP says; [`build`](Self::build) turns it into SDP:
///
/// ```text
/// v=0
/// o=<username> <session_id> <session_version> <connection>
/// s=-
/// c=<connection>
/// t=0 0
/// m=message <port> <proto> *
/// a=sendonly | a=recvonly
/// a=accept-types:...            a=accept-wrapped-types:... (if any)   a=max-size:... (if any)
/// a=path:...                    a=setup:...
/// a=file-selector:...           a=file-transfer-id:...
/// a=file-disposition, a=file-date, a=file-icon, a=file-range (each if given)
/// ```
///
/// The caller supplies every value (ids and versions come from its own randomness and state);
/// [`build`](Self::build) refuses a text field its line cannot carry (a control character, a space
/// where fields are separated by spaces, a broken token or media type) and an empty path, accept
/// list or file selector, with [`SdpError::InvalidInput`] naming the field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTransferOffer {
    /// `o=` user name (`-` if none).
    pub username: String,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
    /// `c=` (and the address part of `o=`), e.g. `Connection::ip4("df7jal23ls0d.invalid")` for a
    /// browser that cannot know its own address (RFC 7977 appendix A).
    pub connection: Connection,
    /// `m=` port. MSRP routes by `a=path`, so a WebSocket client, which listens on no port, puts a
    /// placeholder here; 9 (discard) is the usual one.
    pub port: u16,
    /// `m=` protocol: RFC 7977 section 5.2.2 has WebSocket clients write [`PROTO_TLS`]; some
    /// deployments write [`PROTO_WSS`] or [`PROTO_WS`].
    pub proto: String,
    /// `a=path`: this endpoint's MSRP URI(s), e.g. `msrps://df7jal23ls0d.invalid:2855/98cjs;ws`.
    pub path: Vec<String>,
    /// `a=accept-types`.
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types`, omitted when empty.
    pub accept_wrapped_types: Vec<String>,
    /// `a=max-size`, omitted when `None`.
    pub max_size: Option<u64>,
    /// `a=setup`: [`Setup::Active`] for a WebSocket client, which can only open connections.
    pub setup: Setup,
    /// Push (`a=sendonly`) or pull (`a=recvonly`).
    pub operation: Operation,
    /// `a=file-selector`: at least one selector.
    pub file_selector: FileSelector,
    /// `a=file-transfer-id`: a fresh random token per transfer (RFC 5547 section 8.1).
    pub file_transfer_id: String,
    /// `a=file-disposition`, e.g. `render` or `attachment`.
    pub file_disposition: Option<String>,
    /// `a=file-date`.
    pub file_date: Option<FileDate>,
    /// `a=file-icon`: a `cid:` URL of an icon body sent alongside the SDP.
    pub file_icon: Option<String>,
    /// `a=file-range`.
    pub file_range: Option<FileRange>,
}

/// `TCP/MSRP`: MSRP over plain TCP (RFC 4975).
pub const PROTO_TCP: &str = "TCP/MSRP";
/// `TCP/TLS/MSRP`: MSRP over TLS, also what RFC 7977 section 5.2.2 has WebSocket clients write.
pub const PROTO_TLS: &str = "TCP/TLS/MSRP";
/// `TCP/WS/MSRP`: written by some WebSocket clients; not defined by RFC 7977.
pub const PROTO_WS: &str = "TCP/WS/MSRP";
/// `TCP/WSS/MSRP`: written by some secure WebSocket clients; not defined by RFC 7977.
pub const PROTO_WSS: &str = "TCP/WSS/MSRP";

impl FileTransferOffer {
    /// The offer as a session description (written canonically), once every field is checked: an
    /// [`SdpError::InvalidInput`] names the first field that cannot be written as it is.
    pub fn build(&self) -> Result<SessionDescription, SdpError> {
        self.check()?;
        let mut sdp = SessionDescription::new(Origin::new(
            &self.username,
            self.session_id,
            self.session_version,
            &self.connection,
        ));
        sdp.connection = Some(self.connection.clone());
        let mut media = MediaDescription::new("message", self.port, &self.proto, &["*"]);
        let attributes = &mut media.attributes;
        attributes.push(Attribute::Direction(self.operation.offerer_direction()));
        attributes.push(Attribute::AcceptTypes(self.accept_types.clone()));
        if !self.accept_wrapped_types.is_empty() {
            attributes.push(Attribute::AcceptWrappedTypes(
                self.accept_wrapped_types.clone(),
            ));
        }
        if let Some(size) = self.max_size {
            attributes.push(Attribute::MaxSize(size));
        }
        attributes.push(Attribute::Path(self.path.clone()));
        attributes.push(Attribute::Setup(self.setup));
        attributes.push(Attribute::FileSelector(self.file_selector.clone()));
        attributes.push(Attribute::FileTransferId(self.file_transfer_id.clone()));
        if let Some(disposition) = &self.file_disposition {
            attributes.push(Attribute::FileDisposition(disposition.clone()));
        }
        if let Some(date) = &self.file_date {
            attributes.push(Attribute::FileDate(date.clone()));
        }
        if let Some(icon) = &self.file_icon {
            attributes.push(Attribute::FileIcon(icon.clone()));
        }
        if let Some(range) = self.file_range {
            attributes.push(Attribute::FileRange(range));
        }
        sdp.media.push(media);
        Ok(sdp)
    }

    fn check(&self) -> Result<(), SdpError> {
        check_endpoint(
            &self.username,
            &self.connection,
            &self.path,
            &self.accept_types,
            &self.accept_wrapped_types,
        )?;
        if self.accept_types.is_empty() {
            return Err(invalid(
                InputField::AcceptType { index: 0 },
                InputProblem::Empty,
            ));
        }
        check_proto(&self.proto)?;
        check_selector(&self.file_selector)?;
        check_token(InputField::FileTransferId, &self.file_transfer_id)?;
        if let Some(disposition) = &self.file_disposition {
            check_token(InputField::FileDisposition, disposition)?;
        }
        if let Some(date) = &self.file_date {
            for (field, value) in [
                (InputField::FileDateCreation, &date.creation),
                (InputField::FileDateModification, &date.modification),
                (InputField::FileDateRead, &date.read),
            ] {
                if let Some(value) = value {
                    // Written between quotes, which nothing can escape.
                    check_controls(field, value)?;
                    if let Some(offset) = value.find('"') {
                        return Err(invalid(field, InputProblem::Grammar { offset }));
                    }
                }
            }
        }
        if let Some(icon) = &self.file_icon {
            check_cid(icon)?;
        }
        if let Some(range) = self.file_range
            && (range.start == 0 || range.stop.is_some_and(|stop| stop < range.start))
        {
            return Err(invalid(InputField::FileRange, InputProblem::BadRange));
        }
        Ok(())
    }
}

fn invalid(field: InputField, problem: InputProblem) -> SdpError {
    SdpError::InvalidInput { field, problem }
}

/// A space where the text has one, any other grammar fault otherwise.
fn fault_at(text: &str, offset: usize) -> InputProblem {
    if text.as_bytes().get(offset) == Some(&b' ') {
        InputProblem::Space { offset }
    } else {
        InputProblem::Grammar { offset }
    }
}

/// No control character: CR or LF would end the line early, the others no parser accepts.
fn check_controls(field: InputField, text: &str) -> Result<(), SdpError> {
    match text.bytes().position(|b| b.is_ascii_control()) {
        Some(offset) => Err(invalid(field, InputProblem::ControlCharacter { offset })),
        None => Ok(()),
    }
}

/// RFC 4566 `non-ws-string`: not empty, no control character, no space.
fn check_non_ws(field: InputField, text: &str) -> Result<(), SdpError> {
    if text.is_empty() {
        return Err(invalid(field, InputProblem::Empty));
    }
    check_controls(field, text)?;
    match text.find(' ') {
        Some(offset) => Err(invalid(field, InputProblem::Space { offset })),
        None => Ok(()),
    }
}

/// RFC 4566 `token`.
fn check_token(field: InputField, text: &str) -> Result<(), SdpError> {
    check_non_ws(field, text)?;
    match text.bytes().position(|b| !is_token_char(b)) {
        Some(offset) => Err(invalid(field, InputProblem::Grammar { offset })),
        None => Ok(()),
    }
}

/// RFC 4566 `proto = token *("/" token)`.
fn check_proto(proto: &str) -> Result<(), SdpError> {
    check_non_ws(InputField::Proto, proto)?;
    let mut offset = 0;
    for part in proto.split('/') {
        let bad = part
            .bytes()
            .position(|b| !is_token_char(b))
            .or(part.is_empty().then_some(0));
        if let Some(at) = bad {
            return Err(invalid(
                InputField::Proto,
                InputProblem::Grammar {
                    offset: offset + at,
                },
            ));
        }
        offset += part.len() + 1;
    }
    Ok(())
}

/// A media type the `type:` selector can carry (RFC 5547: no space outside quotes).
fn check_media_type(field: InputField, text: &str) -> Result<(), SdpError> {
    if text.is_empty() {
        return Err(invalid(field, InputProblem::Empty));
    }
    check_controls(field, text)?;
    match lex::scan_media_type(text.as_bytes(), 0, MediaTypeSyntax::Sdp) {
        Ok(end) if end == text.len() => Ok(()),
        Ok(end) => Err(invalid(field, fault_at(text, end))),
        Err(error) => Err(invalid(field, fault_at(text, error.offset))),
    }
}

/// Entries of `accept-types` or `accept-wrapped-types`: each exactly one list entry.
fn check_accept_list(field: fn(usize) -> InputField, list: &[String]) -> Result<(), SdpError> {
    for (index, entry) in list.iter().enumerate() {
        let field = field(index);
        if entry.is_empty() {
            return Err(invalid(field, InputProblem::Empty));
        }
        check_controls(field, entry)?;
        match media_type_list(entry) {
            Ok(items) if items.len() == 1 && items.first() == Some(entry) => {}
            // Blanks around or inside the entry: it would read back as another list.
            Ok(items) => {
                let offset = if entry.starts_with(' ') {
                    0
                } else {
                    items.first().map_or(0, String::len)
                };
                return Err(invalid(field, InputProblem::Space { offset }));
            }
            Err(
                AttributeError::BadMediaType { offset }
                | AttributeError::UnterminatedQuote { offset },
            ) => return Err(invalid(field, fault_at(entry, offset))),
            Err(_) => return Err(invalid(field, InputProblem::Grammar { offset: 0 })),
        }
    }
    Ok(())
}

/// What an offer and an answer both write about their own endpoint.
fn check_endpoint(
    username: &str,
    connection: &Connection,
    path: &[String],
    accept_types: &[String],
    accept_wrapped_types: &[String],
) -> Result<(), SdpError> {
    check_non_ws(InputField::Username, username)?;
    check_token(InputField::NetType, &connection.net_type)?;
    check_token(InputField::AddrType, &connection.addr_type)?;
    check_non_ws(InputField::Address, &connection.address)?;
    if path.is_empty() {
        return Err(invalid(InputField::Path { index: 0 }, InputProblem::Empty));
    }
    for (index, uri) in path.iter().enumerate() {
        check_non_ws(InputField::Path { index }, uri)?;
    }
    check_accept_list(|index| InputField::AcceptType { index }, accept_types)?;
    check_accept_list(
        |index| InputField::AcceptWrappedType { index },
        accept_wrapped_types,
    )
}

fn check_selector(selector: &FileSelector) -> Result<(), SdpError> {
    if selector.is_empty() {
        return Err(invalid(InputField::FileSelector, InputProblem::Empty));
    }
    // The name is percent-encoded when written, so any text goes, but not none.
    if selector.name.as_deref() == Some("") {
        return Err(invalid(InputField::FileName, InputProblem::Empty));
    }
    if let Some(content_type) = &selector.content_type {
        check_media_type(InputField::FileType, content_type)?;
    }
    for (index, hash) in selector.hashes.iter().enumerate() {
        check_token(InputField::HashAlgorithm { index }, &hash.algorithm)?;
        if hash.bytes.is_empty() {
            return Err(invalid(
                InputField::HashValue { index },
                InputProblem::Empty,
            ));
        }
    }
    Ok(())
}

/// `a=file-icon`: a `cid:` URL (RFC 2392) without spaces.
fn check_cid(icon: &str) -> Result<(), SdpError> {
    check_non_ws(InputField::FileIcon, icon)?;
    let scheme_ok = icon
        .get(..4)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("cid:"));
    if !scheme_ok {
        return Err(invalid(
            InputField::FileIcon,
            InputProblem::Grammar { offset: 0 },
        ));
    }
    if icon.len() == 4 {
        return Err(invalid(
            InputField::FileIcon,
            InputProblem::Grammar { offset: 4 },
        ));
    }
    Ok(())
}

/// What the answerer of a file transfer offer says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerParams {
    /// `o=` user name.
    pub username: String,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
    /// `c=` (and the address part of `o=`).
    pub connection: Connection,
    /// `m=` port of the accepted MSRP media.
    pub port: u16,
    /// `a=path`: the answerer's MSRP URI(s).
    pub path: Vec<String>,
    /// `a=accept-types`; the offer's are repeated when empty.
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types`, omitted when empty.
    pub accept_wrapped_types: Vec<String>,
    /// `a=max-size`, omitted when `None`.
    pub max_size: Option<u64>,
    /// `a=setup` to answer with; `None` picks [`Setup::default_answer`] to the offer's (and no
    /// `a=setup` when the offer had none).
    pub setup: Option<Setup>,
}

/// Answers an MSRP file transfer offer (RFC 5547 section 8.3, RFC 3264).
///
/// The first `m=message` section with an MSRP protocol and a non-zero port is accepted: its
/// direction is mirrored (sendonly is answered by recvonly, recvonly by sendonly), its protocol
/// kept, and its `file-selector`, `file-transfer-id`, `file-disposition` and `file-range` repeated
/// (as in RFC 5547 section 9.2's answers; the file's dates and icon describe the offerer's copy and
/// are not); the path, accept types, setup, origin and connection are the answerer's.
/// Every other media section is rejected with port 0, as RFC 3264 section 6 asks.
///
/// An offer without `a=setup` is taken as active (RFC 4975: the offerer opens the connection), so
/// `params.setup` must then be passive or `None`. The answerer's own text fields (`params`) are
/// checked as [`FileTransferOffer::build`] checks an offer's: [`SdpError::InvalidInput`] names the
/// first one that cannot be written.
pub fn answer(
    offer: &SessionDescription,
    params: &AnswerParams,
) -> Result<SessionDescription, SdpError> {
    check_endpoint(
        &params.username,
        &params.connection,
        &params.path,
        &params.accept_types,
        &params.accept_wrapped_types,
    )?;
    let (index, offered) = offer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.is_msrp() && m.port != 0)
        .ok_or(OfferRejection::NoMsrpMedia)?;
    let selector = offered
        .file_selector()
        .filter(|s| !s.is_empty())
        .ok_or(OfferRejection::NoFileSelector)?;
    let transfer_id = offered
        .file_transfer_id()
        .ok_or(OfferRejection::NoFileTransferId)?;
    if offered.path().is_none() {
        return Err(OfferRejection::NoPath.into());
    }
    let direction = offer.direction_of(offered);
    if Operation::from_offer(direction).is_none() {
        return Err(OfferRejection::Direction(direction).into());
    }
    let setup = match (offered.setup(), params.setup) {
        (offered_setup, Some(wanted)) => {
            let offered_setup = offered_setup.unwrap_or(Setup::Active);
            if !offered_setup.accepts_answer(wanted) {
                return Err(OfferRejection::IncompatibleSetup {
                    offer: offered_setup,
                    answer: wanted,
                }
                .into());
            }
            Some(wanted)
        }
        (Some(offered_setup), None) => Some(offered_setup.default_answer()),
        (None, None) => None,
    };

    let mut media = MediaDescription::new("message", params.port, &offered.proto, &["*"]);
    let attributes = &mut media.attributes;
    attributes.push(Attribute::Direction(direction.reversed()));
    let accept_types = match (params.accept_types.is_empty(), offered.accept_types()) {
        (true, Some(types)) => types.to_vec(),
        _ => params.accept_types.clone(),
    };
    if !accept_types.is_empty() {
        attributes.push(Attribute::AcceptTypes(accept_types));
    }
    if !params.accept_wrapped_types.is_empty() {
        attributes.push(Attribute::AcceptWrappedTypes(
            params.accept_wrapped_types.clone(),
        ));
    }
    if let Some(size) = params.max_size {
        attributes.push(Attribute::MaxSize(size));
    }
    attributes.push(Attribute::Path(params.path.clone()));
    if let Some(setup) = setup {
        attributes.push(Attribute::Setup(setup));
    }
    attributes.push(Attribute::FileSelector(selector.clone()));
    attributes.push(Attribute::FileTransferId(transfer_id.to_owned()));
    if let Some(disposition) = offered.file_disposition() {
        attributes.push(Attribute::FileDisposition(disposition.to_owned()));
    }
    if let Some(range) = offered.file_range() {
        attributes.push(Attribute::FileRange(range));
    }

    let mut sdp = SessionDescription::new(Origin::new(
        &params.username,
        params.session_id,
        params.session_version,
        &params.connection,
    ));
    sdp.connection = Some(params.connection.clone());
    let mut media = Some(media);
    for (i, other) in offer.media.iter().enumerate() {
        if i == index {
            if let Some(accepted) = media.take() {
                sdp.media.push(accepted);
            }
        } else {
            let formats: Vec<&str> = other.formats.iter().map(String::as_str).collect();
            sdp.media.push(MediaDescription::new(
                &other.media,
                0,
                &other.proto,
                &formats,
            ));
        }
    }
    Ok(sdp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::FileHash;

    fn offer(operation: Operation) -> FileTransferOffer {
        FileTransferOffer {
            username: "-".into(),
            session_id: 3_600_507_138,
            session_version: 1,
            connection: Connection::ip4("df7jal23ls0d.invalid"),
            port: 9,
            proto: PROTO_WSS.into(),
            path: vec!["msrps://df7jal23ls0d.invalid:2855/98cjs;ws".into()],
            accept_types: vec!["message/cpim".into(), "application/octet-stream".into()],
            accept_wrapped_types: vec!["*".into()],
            max_size: Some(10 * 1024 * 1024),
            setup: Setup::Active,
            operation,
            file_selector: FileSelector {
                name: Some("holiday photo.jpg".into()),
                content_type: Some("image/jpeg".into()),
                size: Some(195_490),
                hashes: vec![FileHash {
                    algorithm: "sha-256".into(),
                    bytes: (0u8..32).collect(),
                }],
            },
            file_transfer_id: "ZVE8MfI9mhAdZ8GyiNMzNN5dpqgzQlCO".into(),
            file_disposition: Some("attachment".into()),
            file_date: Some(FileDate {
                creation: Some("Mon, 15 May 2006 15:01:31 +0300".into()),
                ..FileDate::default()
            }),
            file_icon: None,
            file_range: Some(FileRange {
                start: 1,
                stop: None,
            }),
        }
    }

    fn params() -> AnswerParams {
        AnswerParams {
            username: "as".into(),
            session_id: 42,
            session_version: 7,
            connection: Connection::ip4("as.example.com"),
            port: 2855,
            path: vec!["msrps://as.example.com:443/s3cr3tabcdefghij;ws".into()],
            accept_types: vec!["*".into()],
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: None,
        }
    }

    #[test]
    fn push_offer_is_written_as_rcs_expects() {
        let sdp = offer(Operation::Push).build().unwrap();
        let sha: Vec<String> = (0u8..32).map(|b| format!("{b:02X}")).collect();
        let expected = format!(
            "v=0\r\n\
             o=- 3600507138 1 IN IP4 df7jal23ls0d.invalid\r\n\
             s=-\r\n\
             c=IN IP4 df7jal23ls0d.invalid\r\n\
             t=0 0\r\n\
             m=message 9 TCP/WSS/MSRP *\r\n\
             a=sendonly\r\n\
             a=accept-types:message/cpim application/octet-stream\r\n\
             a=accept-wrapped-types:*\r\n\
             a=max-size:10485760\r\n\
             a=path:msrps://df7jal23ls0d.invalid:2855/98cjs;ws\r\n\
             a=setup:active\r\n\
             a=file-selector:name:\"holiday photo.jpg\" type:image/jpeg size:195490 hash:sha-256:{}\r\n\
             a=file-transfer-id:ZVE8MfI9mhAdZ8GyiNMzNN5dpqgzQlCO\r\n\
             a=file-disposition:attachment\r\n\
             a=file-date:creation:\"Mon, 15 May 2006 15:01:31 +0300\"\r\n\
             a=file-range:1-*\r\n",
            sha.join(":")
        );
        assert_eq!(sdp.to_string(), expected);
        let parsed = SessionDescription::parse(expected.as_bytes()).expect("offer parses");
        assert_eq!(parsed, sdp);
        assert_eq!(parsed.to_string(), expected);
    }

    #[test]
    fn build_refuses_fields_that_would_break_their_line() {
        use InputField as F;
        use InputProblem as P;
        type Edit = fn(&mut FileTransferOffer);
        let cases: &[(&str, Edit, InputField, InputProblem)] = &[
            (
                "type with CR LF",
                |o| o.file_selector.content_type = Some("a/b\r\na=evil".into()),
                F::FileType,
                P::ControlCharacter { offset: 3 },
            ),
            (
                "type with a space",
                |o| o.file_selector.content_type = Some("a/b c".into()),
                F::FileType,
                P::Space { offset: 3 },
            ),
            (
                "type without subtype",
                |o| o.file_selector.content_type = Some("image".into()),
                F::FileType,
                P::Grammar { offset: 5 },
            ),
            (
                "empty type",
                |o| o.file_selector.content_type = Some(String::new()),
                F::FileType,
                P::Empty,
            ),
            (
                "username with a space",
                |o| o.username = "a b".into(),
                F::Username,
                P::Space { offset: 1 },
            ),
            (
                "username with LF",
                |o| o.username = "a\nb".into(),
                F::Username,
                P::ControlCharacter { offset: 1 },
            ),
            (
                "empty username",
                |o| o.username = String::new(),
                F::Username,
                P::Empty,
            ),
            (
                "network type not a token",
                |o| o.connection.net_type = "I\"N".into(),
                F::NetType,
                P::Grammar { offset: 1 },
            ),
            (
                "address type with CR",
                |o| o.connection.addr_type = "IP4\r".into(),
                F::AddrType,
                P::ControlCharacter { offset: 3 },
            ),
            (
                "address with a space",
                |o| o.connection.address = "a.example.com b".into(),
                F::Address,
                P::Space { offset: 13 },
            ),
            (
                "proto with an empty part",
                |o| o.proto = "TCP//MSRP".into(),
                F::Proto,
                P::Grammar { offset: 4 },
            ),
            (
                "proto with a tab",
                |o| o.proto = "TCP/\tMSRP".into(),
                F::Proto,
                P::ControlCharacter { offset: 4 },
            ),
            (
                "no path",
                |o| o.path.clear(),
                F::Path { index: 0 },
                P::Empty,
            ),
            (
                "second path URI with a space",
                |o| o.path.push("msrp://a/b;tcp msrp://c/d;tcp".into()),
                F::Path { index: 1 },
                P::Space { offset: 14 },
            ),
            (
                "no accept types",
                |o| o.accept_types.clear(),
                F::AcceptType { index: 0 },
                P::Empty,
            ),
            (
                "two accept types in one entry",
                |o| o.accept_types[1] = "text/plain image/*".into(),
                F::AcceptType { index: 1 },
                P::Space { offset: 10 },
            ),
            (
                "accept type with CR LF",
                |o| o.accept_types[0] = "a/b\r\na=evil".into(),
                F::AcceptType { index: 0 },
                P::ControlCharacter { offset: 3 },
            ),
            (
                "accept type not a media type",
                |o| o.accept_types[0] = "plain".into(),
                F::AcceptType { index: 0 },
                P::Grammar { offset: 5 },
            ),
            (
                "wrapped type with a leading space",
                |o| o.accept_wrapped_types = vec![" */*".into()],
                F::AcceptWrappedType { index: 0 },
                P::Space { offset: 0 },
            ),
            (
                "empty selector",
                |o| o.file_selector = FileSelector::default(),
                F::FileSelector,
                P::Empty,
            ),
            (
                "empty name",
                |o| o.file_selector.name = Some(String::new()),
                F::FileName,
                P::Empty,
            ),
            (
                "hash algorithm with a colon",
                |o| o.file_selector.hashes[0].algorithm = "sha:256".into(),
                F::HashAlgorithm { index: 0 },
                P::Grammar { offset: 3 },
            ),
            (
                "hash without bytes",
                |o| o.file_selector.hashes[0].bytes.clear(),
                F::HashValue { index: 0 },
                P::Empty,
            ),
            (
                "transfer id with a space",
                |o| o.file_transfer_id = "a b".into(),
                F::FileTransferId,
                P::Space { offset: 1 },
            ),
            (
                "disposition with CR LF",
                |o| o.file_disposition = Some("render\r\na=evil".into()),
                F::FileDisposition,
                P::ControlCharacter { offset: 6 },
            ),
            (
                "date with a quote",
                |o| {
                    o.file_date = Some(FileDate {
                        read: Some("Mon\" x:\"".into()),
                        ..FileDate::default()
                    })
                },
                F::FileDateRead,
                P::Grammar { offset: 3 },
            ),
            (
                "date with LF",
                |o| {
                    o.file_date = Some(FileDate {
                        modification: Some("Mon\na=evil".into()),
                        ..FileDate::default()
                    })
                },
                F::FileDateModification,
                P::ControlCharacter { offset: 3 },
            ),
            (
                "icon that is not cid",
                |o| o.file_icon = Some("http://x/y.png".into()),
                F::FileIcon,
                P::Grammar { offset: 0 },
            ),
            (
                "icon with CR LF",
                |o| o.file_icon = Some("cid:a\r\na=evil".into()),
                F::FileIcon,
                P::ControlCharacter { offset: 5 },
            ),
            (
                "range from 0",
                |o| {
                    o.file_range = Some(FileRange {
                        start: 0,
                        stop: None,
                    })
                },
                F::FileRange,
                P::BadRange,
            ),
        ];
        for (what, edit, field, problem) in cases {
            let mut bad = offer(Operation::Push);
            edit(&mut bad);
            assert_eq!(
                bad.build(),
                Err(SdpError::InvalidInput {
                    field: *field,
                    problem: *problem
                }),
                "{what}"
            );
        }
        // What passes the checks is written as lines that parse back to the same values.
        let mut odd = offer(Operation::Pull);
        odd.file_selector.content_type = Some("text/plain;charset=\"a b\"".into());
        odd.accept_types = vec!["text/plain;x=\"a b\"".into(), "*".into()];
        odd.file_selector.name = Some("new\r\nline.txt".into());
        odd.file_icon = Some("cid:icon@example.com".into());
        let sdp = odd.build().expect("valid offer");
        let parsed = SessionDescription::parse(&sdp.to_bytes()).expect("parses");
        assert_eq!(parsed, sdp);
        let media = parsed.msrp_media().expect("msrp media");
        assert_eq!(media.accept_types(), Some(odd.accept_types.as_slice()));
        assert_eq!(
            media.file_selector().and_then(|s| s.name.as_deref()),
            Some("new\r\nline.txt")
        );
    }

    #[test]
    fn answer_refuses_params_that_would_break_their_line() {
        let offer = offer(Operation::Push).build().unwrap();
        let mut bad = params();
        bad.path = vec!["msrps://as.example.com:443/s;ws\r\na=evil".into()];
        assert_eq!(
            answer(&offer, &bad),
            Err(SdpError::InvalidInput {
                field: InputField::Path { index: 0 },
                problem: InputProblem::ControlCharacter { offset: 31 },
            })
        );
        let mut bad = params();
        bad.accept_types = vec!["*".into(), "text/plain text/html".into()];
        assert_eq!(
            answer(&offer, &bad),
            Err(SdpError::InvalidInput {
                field: InputField::AcceptType { index: 1 },
                problem: InputProblem::Space { offset: 10 },
            })
        );
        // No accept types of its own: the offer's are repeated.
        let mut copying = params();
        copying.accept_types.clear();
        let sdp = answer(&offer, &copying).expect("answerable");
        assert_eq!(
            sdp.msrp_media().and_then(MediaDescription::accept_types),
            offer.msrp_media().and_then(MediaDescription::accept_types)
        );
    }

    #[test]
    fn push_and_pull_answers_mirror_the_direction() {
        for (operation, answered) in [
            (Operation::Push, Direction::RecvOnly),
            (Operation::Pull, Direction::SendOnly),
        ] {
            let offer = offer(operation).build().unwrap();
            let sdp = answer(&offer, &params()).expect("answerable");
            let media = sdp.msrp_media().expect("msrp media");
            assert_eq!(media.direction(), answered);
            assert_eq!(media.proto, PROTO_WSS);
            assert_eq!(media.port, 2855);
            assert_eq!(media.setup(), Some(Setup::Passive));
            assert_eq!(media.path(), Some(params().path.as_slice()));
            assert_eq!(
                media.file_selector(),
                offer.msrp_media().and_then(|m| m.file_selector())
            );
            assert_eq!(
                media.file_transfer_id(),
                Some("ZVE8MfI9mhAdZ8GyiNMzNN5dpqgzQlCO")
            );
            assert_eq!(
                media.file_range(),
                Some(FileRange {
                    start: 1,
                    stop: None
                })
            );
            assert_eq!(sdp.origin.address, "as.example.com");
            // The answer is itself a valid body.
            assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
        }
    }

    #[test]
    fn other_media_are_rejected_with_port_zero() {
        let mut offer = offer(Operation::Push).build().unwrap();
        offer.media.insert(
            0,
            MediaDescription::new("audio", 49170, "RTP/AVP", &["0", "8"]),
        );
        let sdp = answer(&offer, &params()).expect("answerable");
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(
            sdp.media.first().map(|m| (m.port, m.formats.len())),
            Some((0, 2))
        );
        assert_eq!(sdp.media.get(1).map(|m| m.port), Some(2855));
    }

    #[test]
    fn offers_that_are_not_file_transfers_are_rejected() {
        let cases: Vec<(Edit, OfferRejection)> = vec![
            (
                Box::new(|sdp| sdp.media.clear()),
                OfferRejection::NoMsrpMedia,
            ),
            (
                Box::new(|sdp| {
                    sdp.media
                        .iter_mut()
                        .for_each(|m| m.proto = "RTP/AVP".into())
                }),
                OfferRejection::NoMsrpMedia,
            ),
            (
                Box::new(|sdp| sdp.media.iter_mut().for_each(|m| m.port = 0)),
                OfferRejection::NoMsrpMedia,
            ),
            (
                Box::new(|sdp| strip(sdp, "file-selector")),
                OfferRejection::NoFileSelector,
            ),
            (
                Box::new(|sdp| {
                    if let Some(m) = sdp.msrp_media_mut() {
                        strip_into(m, "file-selector");
                        m.attributes
                            .push(Attribute::FileSelector(FileSelector::default()));
                    }
                }),
                OfferRejection::NoFileSelector,
            ),
            (
                Box::new(|sdp| strip(sdp, "file-transfer-id")),
                OfferRejection::NoFileTransferId,
            ),
            (Box::new(|sdp| strip(sdp, "path")), OfferRejection::NoPath),
            (
                Box::new(|sdp| strip(sdp, "sendonly")),
                OfferRejection::Direction(Direction::SendRecv),
            ),
            (
                Box::new(|sdp| {
                    if let Some(m) = sdp.msrp_media_mut() {
                        m.set_direction(Direction::Inactive);
                    }
                }),
                OfferRejection::Direction(Direction::Inactive),
            ),
        ];
        for (i, (edit, expected)) in cases.into_iter().enumerate() {
            let mut sdp = offer(Operation::Push).build().unwrap();
            edit(&mut sdp);
            assert_eq!(
                answer(&sdp, &params()),
                Err(SdpError::Rejected(expected)),
                "case {i}"
            );
        }
    }

    type Edit = Box<dyn Fn(&mut SessionDescription)>;

    fn strip(sdp: &mut SessionDescription, name: &str) {
        if let Some(m) = sdp.msrp_media_mut() {
            strip_into(m, name);
        }
    }

    fn strip_into(media: &mut MediaDescription, name: &str) {
        media.attributes.retain(|a| a.name() != name);
    }

    #[test]
    fn setup_is_negotiated() {
        let offer_active = offer(Operation::Push).build().unwrap();
        let mut wanted = params();
        wanted.setup = Some(Setup::Active);
        assert_eq!(
            answer(&offer_active, &wanted),
            Err(SdpError::Rejected(OfferRejection::IncompatibleSetup {
                offer: Setup::Active,
                answer: Setup::Active,
            }))
        );
        wanted.setup = Some(Setup::Passive);
        let sdp = answer(&offer_active, &wanted).expect("passive answers active");
        assert_eq!(
            sdp.msrp_media().and_then(MediaDescription::setup),
            Some(Setup::Passive)
        );

        let mut no_setup = offer(Operation::Push).build().unwrap();
        strip(&mut no_setup, "setup");
        let sdp = answer(&no_setup, &params()).expect("answerable");
        assert_eq!(sdp.msrp_media().and_then(MediaDescription::setup), None);

        let mut actpass = offer(Operation::Pull).build().unwrap();
        if let Some(m) = actpass.msrp_media_mut() {
            strip_into(m, "setup");
            m.attributes.push(Attribute::Setup(Setup::Actpass));
        }
        wanted.setup = Some(Setup::Active);
        let sdp = answer(&actpass, &wanted).expect("active answers actpass");
        assert_eq!(
            sdp.msrp_media().and_then(MediaDescription::setup),
            Some(Setup::Active)
        );
    }

    #[test]
    fn session_level_direction_applies() {
        let mut sdp = offer(Operation::Pull).build().unwrap();
        strip(&mut sdp, "recvonly");
        sdp.attributes
            .push(Attribute::Direction(Direction::RecvOnly));
        let answered = answer(&sdp, &params()).expect("answerable");
        assert_eq!(
            answered.msrp_media().map(MediaDescription::direction),
            Some(Direction::SendOnly)
        );
    }
}
