//! The sender AS (claims 1 to 8): takes a file from its user over MSRP, stores it in the shared store,
//! and sends the receiver AS only the first value (the digest and a signed URL of the file's storage
//! path) in a SIP MESSAGE.
//!
//! The exchange with the user: INVITE with an RFC 5547 push offer (`a=sendonly`, `a=file-selector`
//! with the size and, from our clients, the SHA-256) → 200 with an answer naming this server's MSRP
//! path (and `a=file-range` from the first missing byte when the upload resumes) → ACK → MSRP SEND
//! chunks, each stored and answered 200 → at the last byte the digest is checked, the manifest
//! written, a success REPORT sent → SIP MESSAGE to the receiver AS → BYE to the user, whose `Reason`
//! header (RFC 3326) carries the receiver AS's answer (200, or 404 / 480 / 403 and why).
//!
//! An upload is keyed by the sender and the announced digest (or the transfer id), so a user who
//! disconnects and offers the same file again continues where the store left off.
//!
//! A client without MSRP uploads over HTTP instead ([`crate::http_files::upload`]) and sends this
//! server a SIP MESSAGE with the FT-HTTP file-info it got back: a URL this deployment signed, for a
//! stored file, takes the same path to the receiver AS as an MSRP upload (answered 202).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::common::{self, Arriving, ConnectionRole, UserSip};
use super::engine::{Interrupt, Tx};
use super::{Input, Output, Rejection};
use super::{authentication, receiver};
use crate::first_value::ContentDigest;
use crate::ft_http::{self, FileInfo, FileInfoDocument};
use crate::http_files;
use crate::msrp::{self, Frame, MsrpUri, Request as MsrpRequest};
use crate::sdp::{
    self, AnswerParams, Attribute, Connection, Direction, FileRange, SessionDescription,
};
use crate::server_config::{ServerConfig, ServerConfigError};
use crate::sip::{
    self, Dialog, Method, NameAddr, Reason, RequestBuilder, SipMessage, SipUri, Warning,
};
use crate::store::{
    FileDescription, Manifest, Record, StoreError, UploadEvent, UploadState, UploadWriter,
    VALUE_LIMIT, keys,
};

/// The sender AS's handlers.
#[derive(Clone, Debug)]
pub struct SenderLogic {
    config: ServerConfig,
    contact: SipUri,
}

impl SenderLogic {
    /// The sender AS with its configuration, once the configuration is found sound.
    pub fn new(config: ServerConfig) -> Result<Self, ServerConfigError> {
        let contact = config.validate()?;
        Ok(Self { config, contact })
    }

    /// Its configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// Where an upload session stands, with what that stage needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum UploadStage {
    /// The session is set up; waiting for the user's MSRP connection to bind (again, after one
    /// closed).
    AwaitingMsrpBind,
    /// Chunks arrive over `connection`.
    Receiving { connection: String },
    /// The file is stored under `digest`; its first value went to the receiver AS.
    Published { digest: ContentDigest },
}

/// When the receiver AS gets the first value of an upload session's file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
enum FirstValueTiming {
    /// Once the file is stored (a sender that announced no digest, or an empty file).
    #[default]
    AfterUpload,
    /// It went when the upload started (cut-through delivery), for the upload's first session;
    /// the receiver AS's answer (status and reason) once it is in.
    WhileUploading { answer: Option<(u16, String)> },
}

/// An upload session (`msrp/<session-id>`): one INVITE dialog, one MSRP session, one file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct UploadSession {
    local_uri: MsrpUri,
    remote_path: Vec<MsrpUri>,
    dialog: Dialog,
    sender: String,
    /// The SIP connection of the sender's device that offered the file.
    device: String,
    recipient: String,
    upload_id: String,
    stage: UploadStage,
    #[serde(default)]
    first_value: FirstValueTiming,
    /// When a sweep may remove the record, in Unix seconds (pushed forward at every write).
    expires: u64,
}

impl Record for UploadSession {
    // 3: the session names the sender's device.
    const VERSION: u32 = 3;
}

/// Writes an upload session, pushing its expiry forward.
fn save(tx: &mut Tx<'_>, key: &str, session: &mut UploadSession) {
    common::save_session(tx, key, session, |s| &mut s.expires);
}

impl common::MsrpSession for UploadSession {
    fn endpoints(&self) -> (&MsrpUri, &[MsrpUri]) {
        (&self.local_uri, &self.remote_path)
    }
}

impl SenderLogic {
    /// Handles one input of the sender AS ([`Logic::handle`](super::engine::Logic::handle)).
    pub(super) fn handle(&self, tx: &mut Tx<'_>, input: &Input) -> Result<(), Interrupt> {
        match input {
            Input::Sip {
                connection,
                message,
            } => match common::on_sip(tx, &self.config, connection, message)? {
                // What belongs to a delivery goes to the receiver AS (a device has one SIP
                // connection, to this server, for everything).
                UserSip::Invite(invite) if asks_for_a_file(&invite) => {
                    self.hand_to_receiver(tx, connection, message)
                }
                UserSip::Bye(bye) if bye.to().tag().is_some_and(receiver::is_delivery_tag) => {
                    self.hand_to_receiver(tx, connection, message)
                }
                // Answers to a delivery's INVITE; the answers to its other requests need nothing.
                UserSip::Response(response)
                    if response.from().tag().is_some_and(receiver::is_delivery_tag) =>
                {
                    if *response.method() != Method::Invite {
                        return Ok(());
                    }
                    self.hand_to_receiver(tx, connection, message)
                }
                UserSip::Invite(invite) => self.accept_upload(tx, connection, &invite),
                UserSip::Bye(bye) => self.end_upload_session(tx, connection, &bye),
                UserSip::Message(message) if message.has_content_type(ft_http::CONTENT_TYPE) => {
                    self.forward_file_info(tx, connection, &message)
                }
                UserSip::Message(message) => {
                    common::relay_message(tx, &self.config, connection, &message)
                }
                // Answers to the BYEs and relayed MESSAGEs this server sent need no action.
                UserSip::Response(_) | UserSip::Handled => Ok(()),
            },
            Input::Msrp {
                connection,
                messages,
            } => messages
                .iter()
                .try_for_each(|message| self.on_msrp(tx, connection, message)),
            Input::Closed { connection } => {
                common::connection_closed(tx, connection, |tx, session| {
                    let key = keys::msrp_session(session);
                    if let Some(mut upload) = tx.record::<UploadSession>(&key)?
                        && matches!(&upload.stage, UploadStage::Receiving { connection: bound } if bound == connection)
                    {
                        upload.stage = UploadStage::AwaitingMsrpBind;
                        save(tx, &key, &mut upload);
                    }
                    Ok(())
                })
            }
            Input::PeerResponse { message } => self.on_peer_response(tx, message),
            Input::PeerRequest { message } => {
                // The sender AS takes no requests from other servers.
                if let Ok(request) = sip::parse(message, &sip::Limits::default())
                    && let Some(response) = common::response_to(tx, &request, 405, None, None)
                {
                    tx.emit(Output::PeerResponse {
                        message: response.to_bytes(),
                    });
                }
                Ok(())
            }
            Input::Timer { .. } => Ok(()),
        }
    }
}

impl SenderLogic {
    fn accept_upload(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        invite: &SipMessage,
    ) -> Result<(), Interrupt> {
        let Some(sender) = common::authenticated_caller(tx, connection, invite)? else {
            return Ok(());
        };
        let Some(recipient) = common::reachable_recipient(tx, connection, invite)? else {
            return Ok(());
        };
        let offer = match self.check_offer(invite) {
            Ok(offer) => offer,
            Err(rejection) => {
                common::reject(tx, connection, invite, &rejection);
                return Ok(());
            }
        };
        let upload_id = upload_id(&sender, &offer);
        let upload_key = keys::upload(&upload_id);
        let manifest_key = offer.file.sha256.map(|digest| digest.storage_key());
        tx.prefetch(
            manifest_key
                .iter()
                .map(String::as_str)
                .chain([upload_key.as_str()]),
        )?;
        // A file stored already is uploaded whole again (its bytes prove the sender has it), and
        // announced once verified: only a file nobody has stored yet goes cut-through.
        let stored = match &manifest_key {
            Some(key) => tx
                .record::<Manifest>(key)?
                .is_some_and(|manifest| !manifest.is_expired(tx.now)),
            None => false,
        };
        let state = match tx.record::<UploadState>(&upload_key)? {
            Some(state) if state.file == offer.file && state.is_live() => state,
            _ => {
                let chunks = tx.ids().token(16);
                let created = UploadState::new(
                    upload_id.clone(),
                    chunks,
                    offer.file.clone(),
                    &self.config.layout,
                    VALUE_LIMIT,
                    tx.now,
                );
                match created {
                    Ok(state) => {
                        tx.set(&upload_key, state.encode());
                        state
                    }
                    Err(error) => {
                        common::reject(tx, connection, invite, &error.into());
                        return Ok(());
                    }
                }
            }
        };
        let mut ids = tx.ids();
        let session_id = ids.msrp_id();
        let local_uri = self.config.msrp_uri(&session_id);
        let params = AnswerParams {
            username: "-".into(),
            session_id: tx.now.unix_secs(),
            session_version: 1,
            connection: Connection::ip4(&self.config.host),
            port: 9,
            path: vec![local_uri.to_string()],
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: Some(self.config.layout.max_file_size),
            setup: None,
        };
        let mut answer = match sdp::answer(&offer.sdp, &params) {
            Ok(answer) => answer,
            Err(error) => {
                let unanswerable = Rejection::Unanswerable(error.to_string());
                common::reject(tx, connection, invite, &unanswerable);
                return Ok(());
            }
        };
        let resume = state.resume_offset();
        if let Some(media) = answer.msrp_media_mut() {
            media
                .attributes
                .retain(|a| !matches!(a, Attribute::FileRange(_)));
            if resume > 0 {
                media.attributes.push(Attribute::FileRange(FileRange {
                    start: resume + 1,
                    stop: Some(offer.file.size),
                }));
            }
        }
        let Some(dialog) =
            common::accept_invite(tx, connection, invite, &session_id, &self.contact, &answer)
        else {
            return Ok(());
        };
        let mut session = UploadSession {
            local_uri,
            remote_path: offer.remote_path,
            dialog,
            sender,
            device: connection.to_owned(),
            recipient: recipient.aor,
            upload_id,
            stage: UploadStage::AwaitingMsrpBind,
            first_value: FirstValueTiming::AfterUpload,
            expires: 0,
        };
        // The first value goes after the session is written, so its answer finds the session.
        let cut_through = !stored && state.file.size > 0 && state.file.sha256.is_some();
        if cut_through {
            session.first_value = FirstValueTiming::WhileUploading { answer: None };
        }
        save(tx, &keys::msrp_session(&session_id), &mut session);
        if cut_through {
            self.start_cut_through(tx, &session, &state);
        }
        Ok(())
    }

    /// Cut-through delivery: the first value of a file whose digest the sender announced goes to
    /// the receiver AS as soon as the upload session starts, naming the upload, so the recipient
    /// receives while the sender is still sending. An upload that resumes sends it again: the
    /// receiver AS goes on with the recipient's delivery if it is still under way.
    fn start_cut_through(&self, tx: &mut Tx<'_>, session: &UploadSession, state: &UploadState) {
        let Some(mut manifest) = state.manifest_to_be() else {
            return;
        };
        manifest.expires = tx
            .now
            .unix_secs()
            .saturating_add(self.config.layout.file_lifetime_secs);
        let tag = session.dialog.local_tag().to_owned();
        self.send_first_value(
            tx,
            &session.sender,
            &session.recipient,
            &tag,
            &manifest,
            Some(&state.id),
        );
    }

    /// The file transfer offer of an INVITE, or why it is refused.
    fn check_offer(&self, invite: &SipMessage) -> Result<Offer, Rejection> {
        let offer = common::transfer_offer(invite, Direction::SendOnly)?;
        let size = offer.selector.size.ok_or(Rejection::NoSize)?;
        let max = self.config.layout.max_file_size;
        if size > max {
            return Err(StoreError::FileTooLarge { size, max }.into());
        }
        let transfer_id = offer.transfer_id.ok_or(Rejection::NoTransferId)?;
        let file = FileDescription {
            size,
            name: offer.selector.name,
            content_type: offer
                .selector
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            sha256: offer.sha256,
        };
        Ok(Offer {
            transfer_id,
            file,
            remote_path: offer.remote_path,
            sdp: offer.sdp,
        })
    }

    fn end_upload_session(
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
        match tx.record::<UploadSession>(&key)? {
            Some(mut session) if session.dialog.matches(bye) => {
                // The upload itself stays, to be resumed by a new offer until it expires.
                let _ = session.dialog.on_request(bye);
                tx.delete(&key);
                common::reply(tx, connection, bye, 200, None);
            }
            _ => common::reply(tx, connection, bye, 481, None),
        }
        Ok(())
    }

    fn on_msrp(&self, tx: &mut Tx<'_>, connection: &str, bytes: &Bytes) -> Result<(), Interrupt> {
        let frame = match msrp::parse_message(bytes, &self.msrp_limits()) {
            Ok(frame) => frame,
            Err(error) => {
                common::reply_unparsable_msrp(tx, connection, bytes, &error);
                return Ok(());
            }
        };
        let Frame::Request(request) = frame else {
            // Responses would answer requests this server sends: REPORTs, which get none.
            return Ok(());
        };
        let Some((session_id, mut session)) =
            common::session_of_request::<UploadSession>(tx, connection, &request)?
        else {
            return Ok(());
        };
        let key = keys::msrp_session(&session_id);
        let local = session.local_uri.clone();
        if request.method != msrp::Method::Send {
            // REPORTs from the user (about nothing this server sent) are ignored; others unknown.
            if request.method != msrp::Method::Report {
                common::msrp_reply(tx, connection, &request, &local, 501, None);
            }
            return Ok(());
        }
        // A SEND over another connection than the bound one moves the upload there (the user
        // reconnected); a published upload only answers late chunks.
        let bound = match &session.stage {
            UploadStage::AwaitingMsrpBind => false,
            UploadStage::Receiving { connection: bound } => bound == connection,
            UploadStage::Published { .. } => true,
        };
        if !bound {
            session.stage = UploadStage::Receiving {
                connection: connection.to_owned(),
            };
            save(tx, &key, &mut session);
            let expires = session.expires;
            let role = ConnectionRole::Msrp {
                session: session_id.clone(),
            };
            common::remember_connection(tx, connection, role, expires);
        }
        if request.continuation == msrp::Continuation::Aborted {
            return self.abort_upload(tx, connection, &key, session, &request);
        }
        let Some(body) = request.body.clone() else {
            // A bodiless SEND binds the connection to the session (RFC 4975 section 5.4).
            common::msrp_reply(tx, connection, &request, &local, 200, None);
            return Ok(());
        };
        self.store_chunk(tx, connection, &key, session, &request, body)
    }

    fn store_chunk(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        session_key: &str,
        mut session: UploadSession,
        request: &MsrpRequest,
        body: Bytes,
    ) -> Result<(), Interrupt> {
        let local = session.local_uri.clone();
        let upload_key = keys::upload(&session.upload_id);
        let live = tx
            .record::<UploadState>(&upload_key)?
            .filter(UploadState::is_live);
        let Some(state) = live else {
            // Complete already (a late duplicate chunk), or expired and discarded.
            let (code, why) = if matches!(session.stage, UploadStage::Published { .. }) {
                (200, None)
            } else {
                (481, Some("the upload no longer exists"))
            };
            common::msrp_reply(tx, connection, request, &local, code, why);
            return Ok(());
        };
        let total = request.headers.byte_range().and_then(|range| range.total);
        if total.is_some_and(|total| total != state.file.size) {
            common::msrp_reply(
                tx,
                connection,
                request,
                &local,
                400,
                Some("Byte-Range total contradicts the offered size"),
            );
            return Ok(());
        }
        let offset = request.body_offsets().start;
        // Chunks come in order over one connection, and a resumed upload starts where the store
        // left off; a chunk far beyond that would make the digest read back everything in between.
        let reach = u64::from(self.config.layout.chunk_size).saturating_mul(MAX_CHUNKS_AHEAD);
        if offset > state.resume_offset().saturating_add(reach) {
            let why = "the chunk starts too far beyond the stored bytes: resume from a=file-range";
            common::msrp_reply(tx, connection, request, &local, 400, Some(why));
            return Ok(());
        }
        let mut writer = UploadWriter::new(state, self.config.layout, tx.now);
        if let Err(error) = writer.write(offset, body) {
            common::msrp_reply(
                tx,
                connection,
                request,
                &local,
                error.status(),
                Some(&error.to_string()),
            );
            return Ok(());
        }
        drive(tx, &mut writer)?;
        let woken = writer.take_waiters();
        writer.finish_request();
        drive(tx, &mut writer)?;
        common::msrp_reply(tx, connection, request, &local, 200, None);
        let event = writer.poll_event();
        let ended = match &event {
            Some(UploadEvent::Failed(error)) => {
                Some(format!("the sender's upload failed: {error}"))
            }
            _ => None,
        };
        let upload_id = session.upload_id.clone();
        match event {
            None => {}
            Some(UploadEvent::Completed { manifest, .. }) => {
                if request.wants_success_report() {
                    let tid = tx.ids().msrp_id();
                    let range = msrp::ByteRange::whole(manifest.size);
                    if let Ok(report) = request.report(&tid, 200, None, range, &local) {
                        tx.emit(Output::Send {
                            connection: connection.to_owned(),
                            message: common::msrp_bytes(&Frame::Request(report)),
                        });
                    }
                }
                session.stage = UploadStage::Published {
                    digest: manifest.digest,
                };
                match session.first_value.clone() {
                    FirstValueTiming::AfterUpload => {
                        save(tx, session_key, &mut session);
                        self.publish(tx, &mut session, &manifest);
                    }
                    // The receiver AS has had the first value since the upload started.
                    FirstValueTiming::WhileUploading {
                        answer: Some((status, text)),
                    } => {
                        self.hang_up(tx, &mut session, status, &text)?;
                        tx.delete(session_key);
                    }
                    FirstValueTiming::WhileUploading { answer: None } => {
                        save(tx, session_key, &mut session);
                    }
                }
            }
            Some(UploadEvent::Failed(error)) => {
                if request.failure_report() != msrp::FailureReport::No {
                    let tid = tx.ids().msrp_id();
                    let range = msrp::ByteRange::whole(writer.state().file.size);
                    if let Ok(report) =
                        request.report(&tid, 400, Some(&error.to_string()), range, &local)
                    {
                        tx.emit(Output::Send {
                            connection: connection.to_owned(),
                            message: common::msrp_bytes(&Frame::Request(report)),
                        });
                    }
                }
                self.hang_up(tx, &mut session, 400, &error.to_string())?;
                tx.delete(session_key);
            }
        }
        // Last, after this input's writes: the deliveries read what they were woken for.
        self.wake_deliveries(tx, &upload_id, woken, ended);
        Ok(())
    }

    /// Claims 1, 3, 4: the first value of the stored file goes to the receiver AS in a SIP MESSAGE
    /// whose body is an FT-HTTP file-info document.
    fn publish(&self, tx: &mut Tx<'_>, session: &mut UploadSession, manifest: &Manifest) {
        let tag = session.dialog.local_tag().to_owned();
        // The From tag names the session, so the receiver AS's answer finds it again.
        self.send_first_value(
            tx,
            &session.sender,
            &session.recipient,
            &tag,
            manifest,
            None,
        );
    }

    /// Sends the receiver AS the sealed MESSAGE carrying the first value of `manifest`, from
    /// `sender` to `recipient` with the From tag `tag`; `upload` names the upload in progress when
    /// the file is still arriving (cut-through).
    fn send_first_value(
        &self,
        tx: &mut Tx<'_>,
        sender: &str,
        recipient: &str,
        tag: &str,
        manifest: &Manifest,
        upload: Option<&str>,
    ) {
        let Some(key) = self.config.signing_keys.first() else {
            return;
        };
        let Some(first_value) = http_files::upload::first_value_for(&self.config, manifest, tx.now)
        else {
            return;
        };
        let info = FileInfo {
            upload: upload.map(str::to_owned),
            ..FileInfo::for_first_value(
                &first_value,
                manifest.size,
                manifest.name.clone(),
                manifest.content_type.clone(),
            )
        };
        let document = FileInfoDocument::new(info).to_xml();
        let mut ids = tx.ids();
        let (Ok(from_uri), Ok(to_uri)) = (SipUri::parse(sender), SipUri::parse(recipient)) else {
            return;
        };
        let mut from = NameAddr::new(from_uri);
        let _ = from.set_param("tag", Some(tag));
        let message =
            RequestBuilder::new(Method::Message, to_uri.clone(), from, NameAddr::new(to_uri))
                .local_host(&self.config.host)
                .with_contact(false)
                .body(ft_http::CONTENT_TYPE, Bytes::from(document))
                .build(&mut ids);
        if let Ok(mut message) = message
            && common::seal_peer_request(&mut message, key).is_ok()
        {
            tx.emit(Output::PeerRequest {
                message: message.to_bytes(),
            });
        }
    }

    /// A user sends an FT-HTTP file-info (a client that uploaded over HTTP instead of MSRP): if its
    /// URL is one this deployment signed, for a file it stores, the first value goes to the
    /// receiver AS as after an MSRP upload, and the user is answered 202. A URL that does not verify
    /// gets 403, a file not stored (or past its lifetime) 404, each with the reason; an unknown or
    /// offline recipient 404 or 480.
    fn forward_file_info(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        message: &SipMessage,
    ) -> Result<(), Interrupt> {
        let Some(sender) = common::authenticated_caller(tx, connection, message)? else {
            return Ok(());
        };
        let Some(recipient) = common::reachable_recipient(tx, connection, message)? else {
            return Ok(());
        };
        let body = message.body();
        let manifest = match common::resolve_file_info(tx, &self.config, body, Arriving::Refused)? {
            Ok(resolved) => resolved.manifest,
            Err(rejection) => {
                common::reject(tx, connection, message, &rejection);
                return Ok(());
            }
        };
        // No session waits for the receiver AS's answer: a fresh tag finds none.
        let tag = tx.ids().tag();
        self.send_first_value(tx, &sender, &recipient.aor, &tag, &manifest, None);
        common::reply(tx, connection, message, 202, None);
        Ok(())
    }

    /// A device's SIP message for the receiver AS goes there in a sealed hop
    /// ([`common::device_hop`]), from the address of record the connection signed in as.
    fn hand_to_receiver(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        message: &Bytes,
    ) -> Result<(), Interrupt> {
        let Some(aor) = authentication::identity(tx, connection)? else {
            return Ok(());
        };
        if let Some(hop) = common::device_hop(&self.config, tx, &aor, connection, message) {
            tx.emit(Output::PeerRequest {
                message: hop.to_bytes(),
            });
        }
        Ok(())
    }

    /// The receiver AS answered the first value: the transfer ends for the sender, with the answer in
    /// the BYE's Reason header. Its answers to device hops need nothing.
    fn on_peer_response(&self, tx: &mut Tx<'_>, bytes: &Bytes) -> Result<(), Interrupt> {
        let Ok(response) = sip::parse_bytes(bytes.clone(), &sip::Limits::default()) else {
            return Ok(());
        };
        if common::answers_device_hop(&response) {
            return Ok(());
        }
        let (Some(status), Some(session_id)) = (response.status(), response.from().tag()) else {
            return Ok(());
        };
        if status < 200 {
            return Ok(());
        }
        let key = keys::msrp_session(session_id);
        let Some(mut session) = tx.record::<UploadSession>(&key)? else {
            return Ok(());
        };
        let text = Warning::explanation(&response);
        let still_uploading = !matches!(session.stage, UploadStage::Published { .. });
        if let FirstValueTiming::WhileUploading { answer } = &mut session.first_value
            && still_uploading
        {
            // The answer ends the session once the file is stored.
            *answer = Some((status, text));
            save(tx, &key, &mut session);
            return Ok(());
        }
        self.hang_up(tx, &mut session, status, &text)?;
        tx.delete(&key);
        Ok(())
    }

    /// Tells the receiver AS that the deliveries `woken` can go on (more of the upload is
    /// stored, or it is published), or, with `ended`, that the upload ended without the file.
    fn wake_deliveries(
        &self,
        tx: &mut Tx<'_>,
        upload_id: &str,
        woken: Vec<String>,
        ended: Option<String>,
    ) {
        if woken.is_empty() {
            return;
        }
        let progress = common::UploadProgress {
            upload: upload_id.to_owned(),
            deliveries: woken,
            ended,
        };
        if let Some(hop) = common::progress_hop(&self.config, tx, &progress) {
            tx.emit(Output::PeerRequest {
                message: hop.to_bytes(),
            });
        }
    }

    /// The user aborted the file (a SEND with the `#` flag, RFC 4975 section 7.1.1): the upload
    /// is discarded, the deliveries waiting for it are told, and the session ends.
    fn abort_upload(
        &self,
        tx: &mut Tx<'_>,
        connection: &str,
        session_key: &str,
        mut session: UploadSession,
        request: &MsrpRequest,
    ) -> Result<(), Interrupt> {
        let local = session.local_uri.clone();
        common::msrp_reply(tx, connection, request, &local, 200, None);
        if matches!(session.stage, UploadStage::Published { .. }) {
            return Ok(()); // Too late: the file is stored whole.
        }
        let upload_key = keys::upload(&session.upload_id);
        let mut woken = Vec::new();
        if let Some(state) = tx.record::<UploadState>(&upload_key)?
            && state.is_live()
        {
            let mut writer = UploadWriter::new(state, self.config.layout, tx.now);
            writer.discard();
            woken = writer.take_waiters();
            drive(tx, &mut writer)?;
        }
        self.hang_up(tx, &mut session, 487, "the file was aborted")?;
        tx.delete(session_key);
        let why = "the sender aborted the file".to_owned();
        self.wake_deliveries(tx, &session.upload_id, woken, Some(why));
        Ok(())
    }

    /// Ends the user's session with a BYE whose Reason (RFC 3326) says how the transfer ended.
    fn hang_up(
        &self,
        tx: &mut Tx<'_>,
        session: &mut UploadSession,
        cause: u16,
        text: &str,
    ) -> Result<(), Interrupt> {
        let mut ids = tx.ids();
        if let Ok(mut bye) = session.dialog.request(Method::Bye, &mut ids) {
            let _ = bye.push_header("Reason", &Reason::sip(cause, text).to_string());
            common::send_sip(tx, &session.device, &bye);
        }
        Ok(())
    }

    fn msrp_limits(&self) -> msrp::Limits {
        msrp::Limits {
            max_body_bytes: (self.config.layout.chunk_size as usize).max(1 << 20),
            ..msrp::Limits::default()
        }
    }
}

/// Whether an INVITE is a download request (a pull, `a=recvonly`): the receiver AS's, as an
/// upload (`a=sendonly`) is this server's.
fn asks_for_a_file(invite: &SipMessage) -> bool {
    SessionDescription::parse(invite.body())
        .ok()
        .and_then(|sdp| {
            let media = sdp.msrp_media()?;
            Some(sdp.direction_of(media) == Direction::RecvOnly)
        })
        .unwrap_or(false)
}

/// How many chunks beyond the stored prefix a SEND may start.
const MAX_CHUNKS_AHEAD: u64 = 16;

/// A checked file transfer offer.
struct Offer {
    transfer_id: String,
    file: FileDescription,
    remote_path: Vec<MsrpUri>,
    sdp: SessionDescription,
}

/// Uploads are keyed by their sender and the file (its announced digest, else the transfer id), so
/// that offering the same file again resumes it.
fn upload_id(sender: &str, offer: &Offer) -> String {
    let mut hasher = Sha256::new();
    hasher.update(sender.as_bytes());
    hasher.update(b"\n");
    match offer.file.sha256 {
        Some(digest) => hasher.update(digest.as_bytes()),
        None => hasher.update(offer.transfer_id.as_bytes()),
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Runs an upload writer's store operations through the transaction, fetching the reads it asks for
/// one after another together.
fn drive(tx: &mut Tx<'_>, writer: &mut UploadWriter) -> Result<(), Interrupt> {
    loop {
        let mut reads = Vec::new();
        let mut next = writer.poll_op();
        while let Some(crate::store::StoreOp::Get { key }) = next {
            reads.push(key);
            next = writer.poll_op();
        }
        tx.prefetch(reads.iter().map(String::as_str))?;
        for key in &reads {
            // Chunks are needed once; a manifest (the duplicate check) may be read again.
            let value = if key.starts_with("file/") {
                tx.get(key)?
            } else {
                tx.get_once(key)?
            };
            // A refused value fails the upload, which the writer reports as an event.
            let _ = writer.on_value(key, value);
        }
        match next {
            Some(op) => {
                tx.apply(op)?;
            }
            // Answered reads may have queued more work.
            None if !reads.is_empty() => {}
            None => return Ok(()),
        }
    }
}
