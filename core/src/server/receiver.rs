//! The receiver AS (claims 9 to 18): takes a first value from the sender AS in a SIP MESSAGE, turns it
//! back into the file's storage path, and delivers the stored file to its user over MSRP, pushed at
//! once or on the user's download request (claim 12).
//!
//! - **push**: INVITE to every device of the user that asked for push, with an offer `a=sendonly`
//!   and `a=file-selector` (name, type, size, SHA-256) → the first device's 200 with its MSRP
//!   path → ACK, and CANCEL (`Reason: SIP;cause=200`, RFC 3326) to the devices still ringing;
//! - **pull**: MESSAGE to every device that asked for pull, with the FT-HTTP file-info (the same
//!   signed URL, which any HTTP client may also fetch) → a device's INVITE with `a=recvonly` and
//!   the file's selector is the download request → 200 → ACK.
//!
//! A device's SIP reaches this server through the sender AS, which takes every device's one SIP
//! connection and hands over what belongs to a delivery ([`common::device_hop`]); this server's
//! requests go straight to the device's connection.
//!
//! Then the user's MSRP connection binds to the session with a bodiless SEND (RFC 4975 section 5.4;
//! a WebSocket client is always the active party, RFC 7977) and the file goes out in chunks read from
//! the store, a window of them in flight: every 200 from the user is the event that lets this
//! stateless server send the next one. The user's success REPORT ends the session with a BYE. A user
//! who loses the connection binds again and the file continues from the last acknowledged byte.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::common::{self, Arriving, ArrivingFile, ConnectionRole, MsrpSession, UserSip};
use super::engine::{Interrupt, Tx};
use super::{Input, Output, Rejection};
use crate::first_value::ContentDigest;
use crate::ft_http;
use crate::ids::TokenSource;
use crate::msrp::{
    self, Chunker, Frame, MsrpUri, Response as MsrpResponse, SenderEvent, WindowedSender,
};
use crate::sdp::{
    self, AnswerParams, Connection, Direction, FileHash, FileSelector, FileTransferOffer,
    Operation, SessionDescription, Setup,
};
use crate::server_config::{ServerConfig, ServerConfigError};
use crate::service::{Delivery, FILE_GONE_CAUSE, WARNING_AGENT};
use crate::sip::{self, Dialog, Method, NameAddr, RequestBuilder, SipMessage, SipUri, Warning};
use crate::store::{ArrivingDelivery, Manifest, Record, Waiter, keys};
use crate::time::Timestamp;

/// The receiver AS's handlers.
#[derive(Clone, Debug)]
pub struct ReceiverLogic {
    config: ServerConfig,
    contact: SipUri,
}

impl ReceiverLogic {
    /// The receiver AS with its configuration, once the configuration is found sound.
    pub fn new(config: ServerConfig) -> Result<Self, ServerConfigError> {
        let contact = config.validate()?;
        Ok(Self { config, contact })
    }

    /// Its configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// The session a delivery has with its user once one of the user's devices has agreed to it: the
/// INVITE dialog (whichever side sent the INVITE), the device's SIP connection and its MSRP path.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Established {
    dialog: Dialog,
    device: String,
    remote_path: Vec<MsrpUri>,
}

/// Where a delivery stands, with what that stage needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum DeliveryStage {
    /// Push: the INVITE is out to the SIP connections of the user's `forked` devices that have
    /// not answered yet, waiting for the first to accept (a device that asks for push); the
    /// file-info may also be out to the user's devices that asked for pull.
    AwaitingInviteAnswer { forked: Vec<String> },
    /// Pull: the file-info is out, waiting for a device's download request.
    Offered,
    /// The session is set up; waiting for the user's MSRP connection to bind. Sending starts at
    /// `resume_from`: a pull request's `a=file-range`, or what was acknowledged before the
    /// connection was lost.
    AwaitingMsrpBind {
        session: Established,
        resume_from: u64,
    },
    /// Chunks are going out over `connection`, from `resume_from` on; its chunks in flight are
    /// a [`WindowRecord`].
    Sending {
        session: Established,
        connection: String,
        resume_from: u64,
    },
    /// Every chunk is acknowledged; waiting for the user's REPORT.
    Sent { session: Established },
}

impl DeliveryStage {
    /// The session with the user, once there is one.
    fn established(&self) -> Option<&Established> {
        match self {
            Self::AwaitingInviteAnswer { .. } | Self::Offered => None,
            Self::AwaitingMsrpBind { session, .. }
            | Self::Sending { session, .. }
            | Self::Sent { session } => Some(session),
        }
    }

    /// The MSRP connection chunks are going out over.
    fn sending_over(&self) -> Option<&str> {
        match self {
            Self::Sending { connection, .. } => Some(connection),
            _ => None,
        }
    }
}

/// A delivery (`msrp/<session-id>`): one file to one user over one MSRP session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DeliverySession {
    recipient: String,
    sender: String,
    digest: ContentDigest,
    /// The upload the file was still arriving by when the first value came (cut-through
    /// delivery): chunks are read from it until it is published as the file.
    #[serde(default)]
    upload: Option<ArrivingUpload>,
    /// The INVITE forked to the user's push devices, as sent: the dialog is built from it and the
    /// first acceptance, and the other devices' answers are cancelled or ended with it.
    invite: Option<String>,
    /// Whether the file-info went to devices that asked for pull (an `offer/…` record).
    offered: bool,
    stage: DeliveryStage,
    local_uri: MsrpUri,
    message_id: String,
    /// When a sweep may remove the record, in Unix seconds (pushed forward at every write).
    expires: u64,
}

impl Record for DeliverySession {
    // 3: a delivery reaches every device of its user.
    const VERSION: u32 = 3;
}

/// The first character of a delivery's session id, which is also its SIP dialog tag: the sender
/// AS, which takes every SIP message of a device, hands a message of a delivery's dialog to this
/// server by it, without reading anything (the other ids of both servers are hex).
pub const DELIVERY_ID_PREFIX: char = 'r';

/// Whether a dialog tag names a delivery of this server.
pub fn is_delivery_tag(tag: &str) -> bool {
    tag.starts_with(DELIVERY_ID_PREFIX)
}

/// Adds the `Reason` the devices that did not get a file are told (RFC 3326 section 2's example:
/// cause 200, "Call completed elsewhere") to a CANCEL or BYE.
fn say_answered_elsewhere(request: &mut SipMessage) {
    let reason = sip::Reason::sip(200, "Call completed elsewhere");
    let _ = request.push_header("Reason", &reason.to_string());
}

impl DeliverySession {
    /// The INVITE forked to the user's push devices, if there was one.
    fn forked_invite(&self) -> Option<SipMessage> {
        let invite = self.invite.as_deref()?;
        sip::parse(invite.as_bytes(), &sip::Limits::default()).ok()
    }
}

/// Writes a delivery, pushing its expiry forward.
fn save(tx: &mut Tx<'_>, key: &str, delivery: &mut DeliverySession) {
    common::save_session(tx, key, delivery, |d| &mut d.expires);
}

/// The chunks in flight on one bound connection (`msrp/<session-id>/window/<connection>`).
///
/// Requests for one session can run at once on the edge: the last answers of a connection the user
/// has just lost may still be in flight while the new connection binds. Every write made on behalf
/// of a connection therefore goes to that connection's own record, and only a bind (or the end of
/// the delivery) writes the session, so a late request of the old connection cannot undo the move.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct WindowRecord {
    window: WindowedSender,
    /// When a sweep may remove the record, in Unix seconds (pushed forward at every write).
    expires: u64,
}

impl Record for WindowRecord {
    const VERSION: u32 = 1;
}

/// The window of `connection`'s binding to the session at `session_key`, if it has one.
fn load_window(
    tx: &mut Tx<'_>,
    session_key: &str,
    connection: &str,
) -> Result<Option<WindowedSender>, Interrupt> {
    Ok(tx
        .record::<WindowRecord>(&keys::window(session_key, connection))?
        .map(|record| record.window))
}

/// Writes `connection`'s window, pushing its expiry forward.
fn save_window(tx: &mut Tx<'_>, session_key: &str, connection: &str, window: WindowedSender) {
    let mut record = WindowRecord { window, expires: 0 };
    common::save_session(
        tx,
        &keys::window(session_key, connection),
        &mut record,
        |r| &mut r.expires,
    );
}

/// The upload a delivery's file is arriving by: its id and its chunks' key prefix. Only the
/// manifest this very upload publishes (the same chunks) is taken as the file once it is
/// complete; a stored file of the same digest is not, since the upload's bytes may not hash to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ArrivingUpload {
    id: String,
    chunks: String,
}

/// Where a delivery's bytes are.
enum Source {
    /// The file is stored whole (published).
    Stored(Manifest),
    /// The file is still arriving (cut-through delivery).
    Arriving(Box<ArrivingFile>),
}

impl Source {
    /// The file's manifest (for a file still arriving, the one it will have).
    fn manifest(&self) -> &Manifest {
        match self {
            Self::Stored(manifest) => manifest,
            Self::Arriving(arriving) => &arriving.manifest,
        }
    }

    /// How many leading bytes can be sent now.
    fn deliverable(&self) -> u64 {
        match self {
            Self::Stored(manifest) => manifest.size,
            Self::Arriving(arriving) => arriving.deliverable,
        }
    }
}

/// Where the delivery's file is now: its manifest if it is stored (expired or not), else the
/// upload it is still arriving by, if that goes on; `None` when it is neither.
fn source_of(tx: &mut Tx<'_>, delivery: &DeliverySession) -> Result<Option<Source>, Interrupt> {
    let manifest_key = delivery.digest.storage_key();
    let Some(upload) = &delivery.upload else {
        return Ok(tx.record::<Manifest>(&manifest_key)?.map(Source::Stored));
    };
    let upload_key = keys::upload(&upload.id);
    tx.prefetch([manifest_key.as_str(), upload_key.as_str()])?;
    let stored = |manifest: Option<Manifest>| {
        manifest
            .filter(|manifest| manifest.chunks == upload.chunks)
            .map(Source::Stored)
    };
    if let Some(source) = stored(tx.record::<Manifest>(&manifest_key)?) {
        return Ok(Some(source));
    }
    if let Some(file) = common::arriving_file(tx, &upload.id, &delivery.digest)?
        .filter(|file| file.manifest.chunks == upload.chunks)
    {
        return Ok(Some(Source::Arriving(Box::new(file))));
    }
    // The upload has ended, or its state is gone. It writes its manifest before it retires its
    // state, but reads that go together are not one snapshot: read the manifest again, after the
    // state, to see one the upload published meanwhile.
    Ok(stored(
        tx.record_after::<Manifest>(&manifest_key, &upload_key)?,
    ))
}

/// Why a delivery stops when its file has gone before it was complete.
const FILE_GONE: &str = "the file is no longer in the store";

/// Why the delivery's file is gone: the reason its upload ended without it, if the upload's state
/// says so, else [`FILE_GONE`].
fn why_gone(tx: &mut Tx<'_>, delivery: &DeliverySession) -> Result<String, Interrupt> {
    let Some(upload) = &delivery.upload else {
        return Ok(FILE_GONE.to_owned());
    };
    let state = tx.record::<crate::store::UploadState>(&keys::upload(&upload.id))?;
    Ok(match state.and_then(|state| state.ended) {
        Some(crate::store::UploadEnd::Failed { reason }) => {
            format!("the sender's upload failed: {reason}")
        }
        _ => FILE_GONE.to_owned(),
    })
}

/// A pull offer waiting for the user's download request (`offer/<aor>/<digest>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OfferRecord {
    /// The delivery session it belongs to.
    session: String,
    /// When a sweep may remove it: when its signed URL expires.
    expires: u64,
}

impl Record for OfferRecord {
    const VERSION: u32 = 1;
}

impl MsrpSession for DeliverySession {
    fn endpoints(&self) -> (&MsrpUri, &[MsrpUri]) {
        let remote_path = self.stage.established().map(|s| s.remote_path.as_slice());
        (&self.local_uri, remote_path.unwrap_or_default())
    }
}

impl ReceiverLogic {
    /// Handles one input of the receiver AS ([`Logic::handle`](super::engine::Logic::handle)).
    pub(super) fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt> {
        match input {
            Input::PeerRequest { message } => self.on_peer_request(tx, message),
            Input::Sip {
                connection,
                message,
            } => match common::on_sip(tx, &self.config, connection, message)? {
                UserSip::Invite(invite) => self.on_download_request(tx, connection, &invite),
                UserSip::Bye(bye) => self.end_delivery_session(tx, connection, &bye),
                // The sender AS relays chats itself and hands this server none.
                UserSip::Message(message) => {
                    let elsewhere = Some("chats are taken by the sender AS");
                    if let Some(mut refusal) =
                        common::response_to(tx, &message, 405, None, elsewhere)
                    {
                        // RFC 3261 section 21.4.6: a 405 lists what is allowed.
                        let _ = refusal.push_header("Allow", "INVITE, ACK, BYE");
                        common::send_sip(tx, connection, &refusal);
                    }
                    Ok(())
                }
                UserSip::Response(response) => self.on_invite_answer(tx, connection, &response),
                UserSip::Handled => Ok(()),
            },
            Input::Msrp {
                connection,
                messages,
            } => self.on_msrp(tx, connection, messages),
            // A delivery is left as it is when its connection closes: writing the session here
            // could undo a bind the user's new connection is making at this very moment. The next
            // bind resumes from what the closed connection's window acknowledged, and the
            // delivery's timer pauses a session nobody binds again.
            Input::Closed { connection } => {
                common::connection_closed(tx, connection, |_, _| Ok(()))
            }
            Input::Timer { key } => self.on_timer(tx, key),
            Input::PeerResponse { .. } => Ok(()),
        }
    }
}

/// Forgets the connection chunks are going out over and its chunks in flight: the delivery waits
/// for a bind again, which resumes from what that connection's window acknowledged.
fn pause(tx: &mut Tx<'_>, key: &str, delivery: &mut DeliveryStage) -> Result<(), Interrupt> {
    let stage = std::mem::replace(delivery, DeliveryStage::Offered);
    *delivery = match stage {
        DeliveryStage::Sending {
            session,
            connection,
            resume_from,
        } => {
            let acknowledged = load_window(tx, key, &connection)?.map(|w| w.acknowledged());
            tx.delete(&keys::window(key, &connection));
            DeliveryStage::AwaitingMsrpBind {
                session,
                resume_from: acknowledged.unwrap_or(resume_from),
            }
        }
        other => other,
    };
    Ok(())
}

impl ReceiverLogic {
    /// Claims 9, 10, 15: the first value arrives in a SIP MESSAGE; its URL is verified and resolved
    /// to the stored file's manifest.
    fn on_peer_request(&self, tx: &mut Tx<'_>, bytes: &Bytes) -> Result<(), Interrupt> {
        let request = match sip::parse_bytes(bytes.clone(), &sip::Limits::default()) {
            Ok(request) if request.is_request() => request,
            Ok(_) => return Ok(()),
            Err(error) => {
                let warning = Warning::miscellaneous(WARNING_AGENT, &error.to_string());
                let answer = format!(
                    "SIP/2.0 400 Bad Request\r\nWarning: {warning}\r\nContent-Length: 0\r\n\r\n"
                );
                tx.emit(Output::PeerResponse {
                    message: Bytes::from(answer),
                });
                return Ok(());
            }
        };
        if let Some(progress) = common::open_progress_hop(&request, &self.config.signing_keys) {
            for delivery in &progress.deliveries {
                self.on_upload_progress(tx, delivery, &progress)?;
            }
            if let Some(response) = common::response_to(tx, &request, 200, None, None) {
                tx.emit(Output::PeerResponse {
                    message: response.to_bytes(),
                });
            }
            return Ok(());
        }
        if let Some(hop) = common::open_device_hop(&request, &self.config.signing_keys) {
            // A device's SIP message that belongs to this server, handed over by the sender AS:
            // handled as if it came over the device's connection, which the answers go to.
            let (connection, message) = hop;
            self.handle(
                tx,
                &Input::Sip {
                    connection,
                    message,
                },
            )?;
            if let Some(response) = common::response_to(tx, &request, 200, None, None) {
                tx.emit(Output::PeerResponse {
                    message: response.to_bytes(),
                });
            }
            return Ok(());
        }
        let (code, warning) = match self.accept_first_value(tx, &request)? {
            Ok(()) => (202, None),
            Err(rejection) => (rejection.status(), Some(rejection.to_string())),
        };
        if let Some(response) = common::response_to(tx, &request, code, None, warning.as_deref()) {
            tx.emit(Output::PeerResponse {
                message: response.to_bytes(),
            });
        }
        Ok(())
    }

    fn accept_first_value(
        &self,
        tx: &mut Tx<'_>,
        request: &SipMessage,
    ) -> Result<Result<(), Rejection>, Interrupt> {
        if !common::peer_request_is_sealed(request, &self.config.signing_keys) {
            return Ok(Err(Rejection::NotSealed));
        }
        if *request.method() != Method::Message {
            return Ok(Err(Rejection::NotMessage));
        }
        if !request.has_content_type(ft_http::CONTENT_TYPE) {
            return Ok(Err(Rejection::NotFileInfo));
        }
        let body = request.body();
        let common::ResolvedFile {
            manifest,
            verified,
            arriving,
        } = match common::resolve_file_info(tx, &self.config, body, Arriving::Taken)? {
            Ok(resolved) => resolved,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let Some(sender_aor) = common::aor_of(request.from().uri()) else {
            return Ok(Err(Rejection::NoSenderUser));
        };
        let recipient = match common::recipient_registration(tx, request)? {
            Ok(recipient) => recipient,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let recipient_aor = recipient.aor.clone();
        // An upload that resumes announces its file again: a delivery of it to this recipient
        // that is still under way goes on instead.
        if let Some(arriving) = &arriving
            && let Some(earlier) = arriving
                .state
                .deliveries
                .iter()
                .find(|d| d.recipient == recipient_aor)
            && self.is_under_way(tx, &earlier.session, &recipient)?
        {
            return Ok(Ok(()));
        }
        let Ok(target) = SipUri::parse(&recipient_aor) else {
            return Ok(Err(Rejection::UnreadableContact));
        };
        let (push, pull): (Vec<_>, Vec<_>) = recipient
            .reachable(tx.now)
            .partition(|device| device.delivery == Delivery::Push);
        let mut ids = tx.ids();
        let session_id = format!("{DELIVERY_ID_PREFIX}{}", ids.msrp_id());
        let local_uri = self.config.msrp_uri(&session_id);
        let message_id = ids.msrp_id();
        let mut from = NameAddr::new(request.from().uri().clone());
        // The From tag names the session: the user's answers carry it back.
        let _ = from.set_param("tag", Some(&session_id));
        let to = NameAddr::new(request.to().uri().clone());
        // One INVITE, forked to every push device (each takes requests for its user's address).
        let invite = if push.is_empty() {
            None
        } else {
            let offer = match self.push_offer(
                &manifest,
                &local_uri,
                &session_id,
                &mut ids,
                tx.now.unix_secs(),
            ) {
                Ok(offer) => offer,
                Err(error) => return Ok(Err(Rejection::Internal(error.to_string()))),
            };
            let invite =
                RequestBuilder::new(Method::Invite, target.clone(), from.clone(), to.clone())
                    .local_host(&self.config.host)
                    .call_id(&format!("{session_id}@{}", self.config.host))
                    .contact(NameAddr::new(self.contact.clone()))
                    .body("application/sdp", Bytes::from(offer.to_bytes()))
                    .build(&mut ids);
            match invite {
                Ok(invite) => Some(invite),
                Err(error) => return Ok(Err(Rejection::Internal(error.to_string()))),
            }
        };
        let file_info = if pull.is_empty() {
            None
        } else {
            let message = RequestBuilder::new(Method::Message, target, from, to)
                .local_host(&self.config.host)
                .with_contact(false)
                .body(ft_http::CONTENT_TYPE, request.body().clone())
                .build(&mut ids);
            match message {
                Ok(message) => Some(message),
                Err(error) => return Ok(Err(Rejection::Internal(error.to_string()))),
            }
        };
        let stage = if invite.is_some() {
            DeliveryStage::AwaitingInviteAnswer {
                forked: push.iter().map(|d| d.connection.clone()).collect(),
            }
        } else {
            DeliveryStage::Offered
        };
        let mut delivery = DeliverySession {
            recipient: recipient_aor.clone(),
            sender: sender_aor.clone(),
            digest: manifest.digest,
            upload: arriving.as_ref().map(|file| ArrivingUpload {
                id: file.state.id.clone(),
                chunks: manifest.chunks.clone(),
            }),
            invite: invite
                .as_ref()
                .map(|invite| String::from_utf8_lossy(&invite.to_bytes()).into_owned()),
            offered: file_info.is_some(),
            stage,
            local_uri,
            message_id,
            expires: 0,
        };
        if file_info.is_some() {
            let offer = OfferRecord {
                session: session_id.clone(),
                expires: verified.expires_unix_secs,
            };
            tx.set_record(&keys::offer(&recipient_aor, &manifest.digest), &offer);
        }
        save(tx, &keys::msrp_session(&session_id), &mut delivery);
        if let Some(arriving) = arriving {
            let mut state = arriving.state;
            state.deliveries.retain(|d| d.recipient != recipient_aor);
            state.deliveries.push(ArrivingDelivery {
                recipient: recipient_aor.clone(),
                session: session_id.clone(),
            });
            tx.set_record(&keys::upload(&state.id), &state);
        }
        if let Some(invite) = &invite {
            for device in &push {
                common::send_sip(tx, &device.connection, invite);
            }
        }
        if let Some(file_info) = &file_info {
            for device in &pull {
                common::send_sip(tx, &device.connection, file_info);
            }
        }
        Ok(Ok(()))
    }

    /// Whether the delivery `session_id` is still under way with its recipient (whose
    /// registration is `recipient`): ringing on a device still bound, or set up with one, and no
    /// device of the recipient's is outside it. An offer for pull, a delivery whose devices have
    /// gone, or a recipient with a device it does not know (a new connection, as after a
    /// restart) is not: the recipient is offered the file again.
    fn is_under_way(
        &self,
        tx: &mut Tx<'_>,
        session_id: &str,
        recipient: &common::Registration,
    ) -> Result<bool, Interrupt> {
        let Some(delivery) = tx.record::<DeliverySession>(&keys::msrp_session(session_id))? else {
            return Ok(false);
        };
        let bound = |connection: &str| recipient.device_on(connection, tx.now).is_some();
        let involved: Vec<&str> = match &delivery.stage {
            DeliveryStage::AwaitingInviteAnswer { forked } => {
                forked.iter().map(String::as_str).collect()
            }
            DeliveryStage::Offered => return Ok(false),
            stage => stage
                .established()
                .map(|session| session.device.as_str())
                .into_iter()
                .collect(),
        };
        // A device of the recipient's that the delivery does not know (a new connection, as after
        // a restart, whose old one may still look bound) is offered the file afresh.
        let every_device_involved = recipient
            .reachable(tx.now)
            .all(|device| involved.contains(&device.connection.as_str()));
        Ok(involved.iter().any(|c| bound(c)) && every_device_involved)
    }

    /// The push offer (claim 11, the second SIP message): this server sends the file.
    fn push_offer(
        &self,
        manifest: &Manifest,
        local_uri: &MsrpUri,
        session_id: &str,
        ids: &mut TokenSource,
        now_secs: u64,
    ) -> Result<SessionDescription, sdp::SdpError> {
        FileTransferOffer {
            username: "-".into(),
            session_id: now_secs,
            session_version: u64::from(ids.number(1_000_000)),
            connection: Connection::ip4(&self.config.host),
            port: 9,
            proto: if self.config.secure {
                sdp::PROTO_TLS
            } else {
                sdp::PROTO_TCP
            }
            .into(),
            path: vec![local_uri.to_string()],
            accept_types: vec![manifest.content_type.clone()],
            accept_wrapped_types: Vec::new(),
            max_size: None,
            // The user's WebSocket client opens the MSRP connection (RFC 7977).
            setup: Setup::Passive,
            operation: Operation::Push,
            file_selector: selector_of(manifest),
            file_transfer_id: session_id.to_owned(),
            file_disposition: Some("attachment".into()),
            file_date: None,
            file_icon: None,
            file_range: None,
        }
        .build()
    }

    /// A device's answer to the forked INVITE. The first acceptance gets the file: it is ACKed,
    /// and the INVITE is cancelled on the devices that have not answered (RFC 3261 section 16.7
    /// step 10), with the `Reason` of RFC 3326; a device that accepts after that is ACKed and sent
    /// a BYE with the same reason. A device that declines is ACKed and left out; when every device
    /// has declined and none was offered the file for pull, the delivery ends.
    fn on_invite_answer(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        response: &SipMessage,
    ) -> Result<(), Interrupt> {
        let (Method::Invite, Some(status), Some(session_id)) =
            (response.method(), response.status(), response.from().tag())
        else {
            return Ok(());
        };
        if status < 200 {
            return Ok(());
        }
        let key = keys::msrp_session(session_id);
        let Some(mut delivery) = tx.record::<DeliverySession>(&key)? else {
            return Ok(());
        };
        // Only the recipient's devices answer for the recipient.
        let registered = common::registration(tx, &delivery.recipient)?;
        if registered.is_none_or(|r| r.device_on(connection, tx.now).is_none()) {
            return Ok(());
        }
        let Some(invite) = delivery.forked_invite() else {
            return Ok(());
        };
        let forked = match &mut delivery.stage {
            DeliveryStage::AwaitingInviteAnswer { forked }
                if forked.iter().any(|c| c == connection) =>
            {
                std::mem::take(forked)
            }
            DeliveryStage::AwaitingInviteAnswer { .. } => return Ok(()),
            stage => {
                if status >= 300 {
                    if let Ok(ack) = sip::ack_for_failure(&invite, response, &mut tx.ids()) {
                        common::send_sip(tx, connection, &ack);
                    }
                } else if let Some(session) = stage.established()
                    && session.device == connection
                {
                    // A retransmitted 2xx: our ACK was lost.
                    if let Ok(ack) = session.dialog.ack(&mut tx.ids()) {
                        common::send_sip(tx, connection, &ack);
                    }
                } else {
                    // Another device took the file first (or it was pulled): this one is told.
                    self.end_answered_elsewhere(tx, connection, &invite, response);
                }
                return Ok(());
            }
        };
        let others: Vec<String> = forked.into_iter().filter(|c| c != connection).collect();
        if status >= 300 {
            // Declined, busy or gone (RFC 3261 section 17.1.1.3: the final answer is ACKed in its
            // transaction). The file stays in the store for the HTTP link.
            if let Ok(ack) = sip::ack_for_failure(&invite, response, &mut tx.ids()) {
                common::send_sip(tx, connection, &ack);
            }
            if others.is_empty() && !delivery.offered {
                tx.delete(&key);
            } else {
                delivery.stage = DeliveryStage::AwaitingInviteAnswer { forked: others };
                save(tx, &key, &mut delivery);
            }
            return Ok(());
        }
        let Ok(mut dialog) = Dialog::uac(&invite, response) else {
            // A 2xx that cannot form a dialog (no Contact, no tag) cannot carry the file either.
            delivery.stage = DeliveryStage::AwaitingInviteAnswer { forked: others };
            save(tx, &key, &mut delivery);
            return Ok(());
        };
        if let Ok(ack) = dialog.ack(&mut tx.ids()) {
            common::send_sip(tx, connection, &ack);
        }
        self.cancel_forks(tx, &invite, &others);
        let remote_path = SessionDescription::parse(response.body())
            .ok()
            .and_then(|sdp| {
                let media = sdp.msrp_media()?;
                media
                    .path()?
                    .iter()
                    .map(|uri| uri.parse::<MsrpUri>().ok())
                    .collect::<Option<Vec<_>>>()
            })
            .filter(|path| !path.is_empty());
        let Some(remote_path) = remote_path else {
            // An answer without a usable MSRP path cannot carry the file: end the session.
            if let Ok(bye) = dialog.request(Method::Bye, &mut tx.ids()) {
                common::send_sip(tx, connection, &bye);
            }
            self.finish(tx, &key, &delivery)?;
            return Ok(());
        };
        delivery.stage = DeliveryStage::AwaitingMsrpBind {
            session: Established {
                dialog,
                device: connection.to_owned(),
                remote_path,
            },
            resume_from: 0,
        };
        save(tx, &key, &mut delivery);
        Ok(())
    }

    /// Cancels the forked INVITE on the devices on `connections`, which have not answered it.
    fn cancel_forks(&self, tx: &mut Tx<'_>, invite: &SipMessage, connections: &[String]) {
        let Ok(mut cancel) = sip::cancel_for(invite) else {
            return;
        };
        say_answered_elsewhere(&mut cancel);
        for connection in connections {
            common::send_sip(tx, connection, &cancel);
        }
    }

    /// A device accepted the forked INVITE after another one got the file: its dialog is ACKed and
    /// ended at once, with the reason.
    fn end_answered_elsewhere(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        invite: &SipMessage,
        response: &SipMessage,
    ) {
        let Ok(mut dialog) = Dialog::uac(invite, response) else {
            return;
        };
        let mut ids = tx.ids();
        if let Ok(ack) = dialog.ack(&mut ids) {
            common::send_sip(tx, connection, &ack);
        }
        if let Ok(mut bye) = dialog.request(Method::Bye, &mut ids) {
            say_answered_elsewhere(&mut bye);
            common::send_sip(tx, connection, &bye);
        }
    }

    /// Claim 12, pull: the user's INVITE asking for a file this server offered it.
    fn on_download_request(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        invite: &SipMessage,
    ) -> Result<(), Interrupt> {
        let Some(caller) = common::authenticated_caller(tx, connection, invite)? else {
            return Ok(());
        };
        let request = match parse_download_request(invite) {
            Ok(request) => request,
            Err(rejection) => {
                common::reject(tx, connection, invite, &rejection);
                return Ok(());
            }
        };
        // An offer that was made but has run out is 410 Gone (RFC 3261 21.4.11), told apart from
        // one that never was (404): the user can ask the sender for the file again.
        let offer = tx.record::<OfferRecord>(&keys::offer(&caller, &request.digest))?;
        let Some(OfferRecord {
            session: session_id,
            expires,
        }) = offer
        else {
            common::reply(
                tx,
                connection,
                invite,
                404,
                Some("no such file was offered to you"),
            );
            return Ok(());
        };
        let key = keys::msrp_session(&session_id);
        let mut delivery = match tx.record::<DeliverySession>(&key)? {
            Some(delivery) if tx.now.unix_secs() <= expires => delivery,
            _ => {
                common::reply(tx, connection, invite, 410, Some("the offer has expired"));
                return Ok(());
            }
        };
        let gone = match source_of(tx, &delivery)? {
            None => true,
            Some(Source::Stored(manifest)) => manifest.is_expired(tx.now),
            Some(Source::Arriving(_)) => false,
        };
        if gone {
            common::reply(tx, connection, invite, 410, Some(FILE_GONE));
            return Ok(());
        }
        let params = AnswerParams {
            username: "-".into(),
            session_id: tx.now.unix_secs(),
            session_version: 1,
            connection: Connection::ip4(&self.config.host),
            port: 9,
            path: vec![delivery.local_uri.to_string()],
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: Some(Setup::Passive),
        };
        let answer = match sdp::answer(&request.sdp, &params) {
            Ok(answer) => answer,
            Err(error) => {
                let unanswerable = Rejection::Unanswerable(error.to_string());
                common::reject(tx, connection, invite, &unanswerable);
                return Ok(());
            }
        };
        let Some(dialog) =
            common::accept_invite(tx, connection, invite, &session_id, &self.contact, &answer)
        else {
            return Ok(());
        };
        // A new request for the same offer (the user asks again, say from further in, or from
        // another device) replaces the session it had: the connection it was sending over is left.
        if let Some(previous) = delivery.stage.sending_over() {
            tx.delete(&keys::window(&key, previous));
        }
        // Push devices still ringing are told the file was taken here.
        if let DeliveryStage::AwaitingInviteAnswer { forked } = &delivery.stage
            && let Some(invite) = delivery.forked_invite()
        {
            let forked = forked.clone();
            self.cancel_forks(tx, &invite, &forked);
        }
        delivery.stage = DeliveryStage::AwaitingMsrpBind {
            session: Established {
                dialog,
                device: connection.to_owned(),
                remote_path: request.remote_path,
            },
            resume_from: request.resume_from,
        };
        save(tx, &key, &mut delivery);
        Ok(())
    }

    fn end_delivery_session(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        bye: &SipMessage,
    ) -> Result<(), Interrupt> {
        let Some(session_id) = bye.to().tag() else {
            common::reply(tx, connection, bye, 481, None);
            return Ok(());
        };
        let key = keys::msrp_session(session_id);
        match tx.record::<DeliverySession>(&key)? {
            Some(delivery)
                if delivery
                    .stage
                    .established()
                    .is_some_and(|session| session.dialog.matches(bye)) =>
            {
                self.finish(tx, &key, &delivery)?;
                common::reply(tx, connection, bye, 200, None);
            }
            _ => common::reply(tx, connection, bye, 481, None),
        }
        Ok(())
    }

    /// The messages of the user's MSRP connection, in order. Consecutive responses for the same
    /// delivery are taken together: the window takes them all, then one refill sends what they
    /// freed, reading its chunks in one round.
    fn on_msrp(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        messages: &[Bytes],
    ) -> Result<(), Interrupt> {
        let mut answers: Vec<MsrpResponse> = Vec::new();
        for bytes in messages {
            let frame = match msrp::parse_message(bytes, &msrp::Limits::default()) {
                Ok(frame) => frame,
                Err(error) => {
                    self.on_chunk_responses(tx, connection, &mut answers)?;
                    common::reply_unparsable_msrp(tx, connection, bytes, &error);
                    continue;
                }
            };
            match frame {
                Frame::Response(response) => {
                    let same_session = answers.first().is_none_or(|first| {
                        common::addressed_session(&first.headers)
                            == common::addressed_session(&response.headers)
                    });
                    if !same_session {
                        self.on_chunk_responses(tx, connection, &mut answers)?;
                    }
                    answers.push(response);
                }
                Frame::Request(request) => {
                    self.on_chunk_responses(tx, connection, &mut answers)?;
                    self.on_msrp_request(tx, connection, &request)?;
                }
            }
        }
        self.on_chunk_responses(tx, connection, &mut answers)
    }

    fn on_msrp_request(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        request: &msrp::Request,
    ) -> Result<(), Interrupt> {
        let Some((session_id, mut delivery)) =
            common::session_of_request::<DeliverySession>(tx, connection, request)?
        else {
            return Ok(());
        };
        let key = keys::msrp_session(&session_id);
        let local = delivery.local_uri.clone();
        match request.method {
            msrp::Method::Send if request.body.is_none() => {
                common::msrp_reply(tx, connection, request, &local, 200, None);
                self.bind(tx, connection, &key, &session_id, &mut delivery)
            }
            msrp::Method::Send => {
                common::msrp_reply(
                    tx,
                    connection,
                    request,
                    &local,
                    403,
                    Some("this session only sends"),
                );
                Ok(())
            }
            msrp::Method::Report => {
                let delivered = request
                    .headers
                    .status()
                    .is_some_and(|status| status.code == 200)
                    && request.message_id() == Some(delivery.message_id.as_str());
                if delivered
                    || request
                        .headers
                        .status()
                        .is_some_and(|status| status.code >= 400)
                {
                    self.finish(tx, &key, &delivery)?;
                    self.hang_up(tx, &mut delivery, None)?;
                }
                Ok(())
            }
            _ => {
                common::msrp_reply(tx, connection, request, &local, 501, None);
                Ok(())
            }
        }
    }

    /// The user's MSRP connection is bound: start (or resume) sending.
    fn bind(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        key: &str,
        session_id: &str,
        delivery: &mut DeliverySession,
    ) -> Result<(), Interrupt> {
        if !matches!(
            delivery.stage,
            DeliveryStage::AwaitingMsrpBind { .. } | DeliveryStage::Sending { .. }
        ) {
            return Ok(());
        }
        let Some(source) = source_of(tx, delivery)? else {
            let why = why_gone(tx, delivery)?;
            self.stop(tx, key, delivery, None, &why)?;
            return Ok(());
        };
        let manifest = source.manifest().clone();
        // Takes over from the connection bound before, if any: from what it acknowledged.
        pause(tx, key, &mut delivery.stage)?;
        let DeliveryStage::AwaitingMsrpBind {
            session,
            resume_from,
        } = std::mem::replace(&mut delivery.stage, DeliveryStage::Offered)
        else {
            return Ok(());
        };
        let mut window = WindowedSender::new(
            &delivery.message_id,
            manifest.size,
            u64::from(self.config.msrp_chunk_size),
            self.config.window,
            resume_from.min(manifest.size),
        );
        delivery.stage = DeliveryStage::Sending {
            session,
            connection: connection.to_owned(),
            resume_from,
        };
        let role = ConnectionRole::Msrp {
            session: session_id.to_owned(),
        };
        let expires = tx.now.unix_secs().saturating_add(common::SESSION_IDLE_SECS);
        common::remember_connection(tx, connection, role, expires);
        save(tx, key, delivery);
        if self.pump(tx, key, delivery, connection, &mut window, &source)? {
            arm_timer(tx, key, &window, &source);
        }
        Ok(())
    }

    /// The sender AS says that more of an upload this delivery waits for is stored, or that the
    /// upload has ended: the delivery goes on over its connection, or stops with the reason.
    fn on_upload_progress(
        &self,
        tx: &mut Tx<'_>,
        session_id: &str,
        progress: &common::UploadProgress,
    ) -> Result<(), Interrupt> {
        let key = keys::msrp_session(session_id);
        let Some(mut delivery) = tx.record::<DeliverySession>(&key)? else {
            return Ok(());
        };
        if delivery.upload.as_ref().map(|upload| upload.id.as_str())
            != Some(progress.upload.as_str())
        {
            return Ok(());
        }
        // A delivery not bound to a connection looks at the upload when it binds.
        let Some(connection) = delivery.stage.sending_over().map(str::to_owned) else {
            return Ok(());
        };
        let Some(mut window) = load_window(tx, &key, &connection)? else {
            return Ok(());
        };
        let Some(source) = source_of(tx, &delivery)? else {
            let why = match &progress.ended {
                Some(ended) => ended.clone(),
                None => why_gone(tx, &delivery)?,
            };
            self.stop(tx, &key, &mut delivery, Some((&connection, &window)), &why)?;
            return Ok(());
        };
        // One chunk, published to the connection: its acknowledgement brings the rest in the
        // answer to it, as always. A gateway may drop published messages a busy connection cannot
        // take (Pushpin does), while it always carries the answer to a request.
        if self.pump_some(tx, &key, &delivery, &connection, &mut window, &source, 1)? {
            arm_timer(tx, &key, &window, &source);
        }
        Ok(())
    }

    /// Ends a delivery whose file cannot be had (its upload ended without it, or it is gone from
    /// the store): the message in progress is aborted on `sending` (a `#` chunk, RFC 4975
    /// section 7.1.1, so the user's client drops what it has), and the dialog ends with a BYE
    /// whose `Reason` says why.
    fn stop(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        delivery: &mut DeliverySession,
        sending: Option<(&str, &WindowedSender)>,
        why: &str,
    ) -> Result<(), Interrupt> {
        if let Some((connection, window)) = sending
            && let Ok(chunker) = self.chunker(delivery, "application/octet-stream", window.total())
        {
            let tid = tx.ids().msrp_id();
            if let Ok(abort) = chunker.abort(&tid, window.next_offset()) {
                tx.emit(Output::Send {
                    connection: connection.to_owned(),
                    message: common::msrp_bytes(&Frame::Request(abort)),
                });
            }
        }
        self.finish(tx, key, delivery)?;
        self.hang_up(tx, delivery, Some(sip::Reason::sip(FILE_GONE_CAUSE, why)))
    }

    /// Responses to chunks of one delivery, taken (and cleared) together.
    fn on_chunk_responses(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        responses: &mut Vec<MsrpResponse>,
    ) -> Result<(), Interrupt> {
        let Some(session_id) = responses
            .first()
            .and_then(|first| common::addressed_session(&first.headers))
        else {
            responses.clear();
            return Ok(());
        };
        let key = keys::msrp_session(session_id);
        // The session and the connection's window, read in one round.
        tx.prefetch([key.as_str(), keys::window(&key, connection).as_str()])?;
        let answered = std::mem::take(responses);
        let Some(mut delivery) = tx.record::<DeliverySession>(&key)? else {
            return Ok(());
        };
        if delivery.stage.sending_over() != Some(connection) {
            return Ok(()); // Answers from a connection the session has left.
        }
        let Some(mut window) = load_window(tx, &key, connection)? else {
            return Ok(());
        };
        let mut slots_freed = false;
        for response in &answered {
            match window.on_response(&response.transaction_id, response.code) {
                Ok(SenderEvent::Acknowledged { .. }) => slots_freed = true,
                Ok(SenderEvent::Finished) => {
                    tx.delete(&keys::window(&key, connection));
                    if let DeliveryStage::Sending { session, .. } =
                        std::mem::replace(&mut delivery.stage, DeliveryStage::Offered)
                    {
                        delivery.stage = DeliveryStage::Sent { session };
                    }
                    save(tx, &key, &mut delivery);
                    return Ok(());
                }
                Ok(SenderEvent::Aborted { .. }) => {
                    // The user refused the file (413 or another error): the session ends.
                    self.finish(tx, &key, &delivery)?;
                    self.hang_up(tx, &mut delivery, None)?;
                    return Ok(());
                }
                Ok(SenderEvent::Ignored) | Err(_) => {}
            }
        }
        // Acknowledgements that free nothing still look at the window: a batch of this very
        // input's writes may have landed in part before a conflict (its window written, not the
        // upload's state it waits in), and the input handled again must finish the job.
        if !slots_freed && window.in_flight() > 0 {
            return Ok(());
        }
        let Some(source) = source_of(tx, &delivery)? else {
            let why = why_gone(tx, &delivery)?;
            self.stop(tx, &key, &mut delivery, Some((connection, &window)), &why)?;
            return Ok(());
        };
        self.pump(tx, &key, &delivery, connection, &mut window, &source)?;
        Ok(())
    }

    /// Sends as many chunks as `connection`'s window allows, one reply carries and the file has
    /// ready, read from the store (claim 11: the file is read by its storage path and sent over
    /// the MSRP channel), and writes the window. A delivery of a file still arriving that has
    /// sent everything it can and has nothing in flight waits in the upload's state for the
    /// sender AS to wake it ([`Waiter`]). Returns whether the delivery goes on (a chunk that has
    /// gone from the store stops it).
    fn pump(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        delivery: &DeliverySession,
        connection: &str,
        window: &mut WindowedSender,
        source: &Source,
    ) -> Result<bool, Interrupt> {
        self.pump_some(tx, key, delivery, connection, window, source, usize::MAX)
    }

    /// [`pump`](Self::pump), sending `most` chunks at most.
    #[allow(clippy::too_many_arguments)]
    fn pump_some(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        delivery: &DeliverySession,
        connection: &str,
        window: &mut WindowedSender,
        source: &Source,
        most: usize,
    ) -> Result<bool, Interrupt> {
        let manifest = source.manifest();
        let deliverable = source.deliverable();
        let mut ids = tx.ids();
        let mut plans = Vec::new();
        // What one reply can carry: at least one chunk, and no more than the gateway takes.
        let chunk_room =
            self.config.msrp_chunk_size as usize + crate::server_config::MSRP_HEADER_ROOM;
        let mut room = self.config.max_reply_bytes;
        while room >= chunk_room
            && plans.len() < most
            && let Some(plan) = window.next_chunk_within(&mut ids, tx.now, deliverable)
        {
            plans.push(plan);
            room -= chunk_room;
        }
        // Ask for every chunk of the window at once, so a request reads the store in one round.
        let reads: Vec<_> = plans
            .iter()
            .flat_map(|plan| manifest.chunk_reads(plan.range.clone()))
            .collect();
        tx.prefetch(reads.iter().map(|read| read.key.as_str()))?;
        let Ok(chunker) = self.chunker(delivery, &manifest.content_type, manifest.size) else {
            return Ok(false);
        };
        for plan in plans {
            let mut body = BytesMut::new();
            let mut single = None;
            for read in manifest.chunk_reads(plan.range.clone()) {
                let part = tx
                    .get_once(&read.key)?
                    .filter(|value| value.get(read.within.clone()).is_some());
                let Some(value) = part else {
                    // A chunk the file had is gone (the store lost it, or the upload it was
                    // arriving by was discarded): the delivery cannot go on.
                    let mut delivery = delivery.clone();
                    self.stop(
                        tx,
                        key,
                        &mut delivery,
                        Some((connection, window)),
                        FILE_GONE,
                    )?;
                    return Ok(false);
                };
                if single.is_none()
                    && body.is_empty()
                    && read.within.len() as u64 == plan.range.end - plan.range.start
                {
                    single = Some(value.slice(read.within.clone()));
                } else {
                    body.extend_from_slice(&value[read.within.clone()]);
                }
            }
            let body = single.unwrap_or_else(|| body.freeze());
            if let Ok(request) = chunker.request_for(&plan, body) {
                tx.emit(Output::Send {
                    connection: connection.to_owned(),
                    message: common::msrp_bytes(&Frame::Request(request)),
                });
            }
        }
        save_window(tx, key, connection, window.clone());
        if let Source::Arriving(arriving) = source
            && window.in_flight() == 0
            && window.next_offset() < manifest.size
        {
            self.wait_for_upload(tx, key, delivery, window, arriving);
        }
        Ok(true)
    }

    /// Puts the delivery among the upload's waiters, to be woken once the upload has stored a
    /// window's worth beyond what was sent (or has ended).
    fn wait_for_upload(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        delivery: &DeliverySession,
        window: &WindowedSender,
        arriving: &ArrivingFile,
    ) {
        let (Some(upload), Some(session_id)) = (&delivery.upload, key.strip_prefix("msrp/")) else {
            return;
        };
        let upload = &upload.id;
        let ahead = window.chunk_size().saturating_mul(window.window() as u64);
        let waiter = Waiter {
            delivery: session_id.to_owned(),
            wake_at: window
                .next_offset()
                .saturating_add(ahead)
                .min(arriving.manifest.size),
        };
        if arriving.state.waiting.contains(&waiter) {
            return;
        }
        let mut state = arriving.state.clone();
        state.waiting.retain(|w| w.delivery != waiter.delivery);
        state.waiting.push(waiter);
        tx.set_record(&keys::upload(upload), &state);
    }

    /// The MSRP chunker of the delivery's message.
    fn chunker(
        &self,
        delivery: &DeliverySession,
        content_type: &str,
        size: u64,
    ) -> Result<Chunker, msrp::MsrpError> {
        Chunker::new(
            &delivery.message_id,
            content_type,
            Some(size),
            u64::from(self.config.msrp_chunk_size),
            delivery.endpoints().1.to_vec(),
            vec![delivery.local_uri.clone()],
        )
        .and_then(|chunker| chunker.with_header("Success-Report", "yes"))
    }

    /// The delivery's timer: a transaction timed out means the user's connection is taken as lost
    /// (the next bind resumes); otherwise the timer is set again for the next deadline.
    fn on_timer(&self, tx: &mut Tx<'_>, key: &str) -> Result<(), Interrupt> {
        let Some(mut delivery) = tx.record::<DeliverySession>(key)? else {
            return Ok(());
        };
        let Some(connection) = delivery.stage.sending_over().map(str::to_owned) else {
            return Ok(());
        };
        let Some(mut window) = load_window(tx, key, &connection)? else {
            return Ok(());
        };
        if let Some(SenderEvent::Aborted { .. }) = window.on_timeout(tx.now) {
            pause(tx, key, &mut delivery.stage)?;
            save(tx, key, &mut delivery);
            return Ok(());
        }
        if window.in_flight() > 0 {
            if let Some(at) = window.next_deadline() {
                tx.emit(Output::Timer {
                    at,
                    key: key.to_owned(),
                });
            }
            return Ok(());
        }
        // Nothing in flight: the delivery waits for its file to arrive. An upload given up by
        // its sender (past its lifetime) ends it; otherwise it goes on with what is there.
        match source_of(tx, &delivery)? {
            None => {
                let why = "the sender stopped sending before the file was complete";
                self.stop(tx, key, &mut delivery, Some((&connection, &window)), why)?;
            }
            Some(source) => {
                if self.pump(tx, key, &delivery, &connection, &mut window, &source)? {
                    arm_timer(tx, key, &window, &source);
                }
            }
        }
        Ok(())
    }

    /// Forgets a finished or failed delivery, and its pull offer unless a newer offer of the same
    /// file has taken the key.
    fn finish(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        delivery: &DeliverySession,
    ) -> Result<(), Interrupt> {
        tx.delete(key);
        if let Some(connection) = delivery.stage.sending_over() {
            tx.delete(&keys::window(key, connection));
        }
        if delivery.offered {
            let offer_key = keys::offer(&delivery.recipient, &delivery.digest);
            let session = key.trim_start_matches("msrp/");
            if let Some(offer) = tx.record::<OfferRecord>(&offer_key)?
                && offer.session == session
            {
                tx.delete(&offer_key);
            }
        }
        Ok(())
    }

    /// Ends the delivery's dialog with a BYE to the device in it; when that device is gone (another
    /// agent took the delivery over from a checkpoint), to every device of the user, each of which
    /// answers for the dialogs it has.
    fn hang_up(
        &self,
        tx: &mut Tx<'_>,
        delivery: &mut DeliverySession,
        reason: Option<sip::Reason>,
    ) -> Result<(), Interrupt> {
        let mut ids = tx.ids();
        let Some(session) = delivery.stage.established() else {
            return Ok(());
        };
        let Ok(mut bye) = session.dialog.clone().request(Method::Bye, &mut ids) else {
            return Ok(());
        };
        if let Some(reason) = reason {
            let _ = bye.push_header("Reason", &reason.to_string());
        }
        let registered = common::registration(tx, &delivery.recipient)?;
        if registered.is_some_and(|r| r.device_on(&session.device, tx.now).is_some()) {
            common::send_sip(tx, &session.device, &bye);
        } else {
            common::send_to_user(tx, &delivery.recipient, &bye)?;
        }
        Ok(())
    }
}

/// Sets the delivery's one timer: at the first deadline of the chunks in flight, or, when nothing
/// is in flight and the file is still arriving, at the moment its upload would be given up.
fn arm_timer(tx: &mut Tx<'_>, key: &str, window: &WindowedSender, source: &Source) {
    let at = window.next_deadline().or(match source {
        Source::Arriving(arriving) if window.in_flight() == 0 => Some(Timestamp::from_unix_millis(
            arriving.expires.saturating_add(1).saturating_mul(1000),
        )),
        _ => None,
    });
    if let Some(at) = at {
        tx.emit(Output::Timer {
            at,
            key: key.to_owned(),
        });
    }
}

/// A download request checked: the file it names, where to send, and from where.
struct DownloadRequest {
    digest: ContentDigest,
    remote_path: Vec<MsrpUri>,
    resume_from: u64,
    sdp: SessionDescription,
}

fn parse_download_request(invite: &SipMessage) -> Result<DownloadRequest, Rejection> {
    let offer = common::transfer_offer(invite, Direction::RecvOnly)?;
    let digest = offer.sha256.ok_or(Rejection::NoDigest)?;
    Ok(DownloadRequest {
        digest,
        remote_path: offer.remote_path,
        resume_from: offer.range_start,
        sdp: offer.sdp,
    })
}

/// The file selector of a stored file: name, type, size and SHA-256 (RFC 5547 section 5).
fn selector_of(manifest: &Manifest) -> FileSelector {
    FileSelector {
        name: manifest.name.clone(),
        content_type: Some(manifest.content_type.clone()),
        size: Some(manifest.size),
        hashes: vec![FileHash {
            algorithm: "sha-256".into(),
            bytes: manifest.digest.as_bytes().to_vec(),
        }],
    }
}
