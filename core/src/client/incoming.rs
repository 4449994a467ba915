//! Receiving one file: the push INVITE or the pull offer, accepting it, binding the MSRP connection,
//! the chunks (written by the caller, acknowledged after), the digest check, the REPORT and the
//! server's BYE; binding again after a lost connection.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ClientError, IncomingFile, OfferKind, Refusal, TransferEvent, TransferId, UserAgent};
use crate::ft_http::FileInfoDocument;
use crate::msrp::{self, ByteRange, Frame, MsrpError, MsrpUri, Reassembly, Request, StatusHeader};
use crate::ranges::RangeSet;
use crate::sdp::{
    self, AnswerParams, Attribute, Connection, FileHash, FileRange, FileSelector, Operation,
    SessionDescription, Setup,
};
use crate::service::Side;
use crate::sip::{self, Dialog, Method, SipMessage, SipUri};

/// Where an incoming transfer stands.
enum Phase {
    /// Push: the server's INVITE waits for [`UserAgent::accept`].
    Invited { invite: SipMessage },
    /// Pull: the file-info waits for [`UserAgent::accept`]; the request goes to `sender`.
    Offered { sender: SipUri },
    /// Push accepted: the 200 is out, waiting for the server's ACK before binding (the server
    /// takes MSRP for the session only once it has the answer).
    AwaitingAck,
    /// Pull accepted: the INVITE is out, waiting for its answer.
    Requesting { invite: SipMessage },
    /// The MSRP connection is bound (or being bound by `bind`); chunks arrive.
    Receiving { bind: String },
    /// Every byte is written; waiting for the caller's digest.
    Verifying,
    /// The REPORT is out; waiting for the server's BYE.
    Reported,
}

pub(super) struct Incoming {
    file: IncomingFile,
    session: Option<String>,
    local: Option<MsrpUri>,
    server_path: Vec<MsrpUri>,
    dialog: Option<Dialog>,
    /// Bytes before this one are on disk already (a pull that resumes, a restored checkpoint).
    resume_from: u64,
    reassembly: Option<Reassembly>,
    phase: Phase,
}

/// What a delivery in progress needs to go on in another agent: the sessions' identities and paths
/// and how many bytes from the start are written and acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingCheckpoint {
    /// The file.
    pub file: IncomingFile,
    /// This side's MSRP session id.
    pub session: String,
    /// This side's MSRP URI, which the server knows the session's peer by.
    pub local: MsrpUri,
    /// The server's MSRP path.
    pub server_path: Vec<MsrpUri>,
    /// The SIP dialog, so the server's BYE is recognised.
    pub dialog: Option<Dialog>,
    /// The Message-ID of the file's chunks, once one arrived.
    pub message_id: Option<String>,
    /// Every byte before this one is written.
    pub written: u64,
}

fn sha256_of(selector: &FileSelector) -> Option<[u8; 32]> {
    selector
        .hash("sha-256")
        .and_then(|hash| <[u8; 32]>::try_from(hash.bytes.as_slice()).ok())
}

impl Incoming {
    /// A push offer: the receiver AS's INVITE.
    pub(super) fn invited(invite: &SipMessage) -> Result<(Self, IncomingFile), String> {
        let sdp = SessionDescription::parse(invite.body()).map_err(|e| e.to_string())?;
        let media = sdp.msrp_media().ok_or("the offer has no MSRP media")?;
        if Operation::from_offer(sdp.direction_of(media)) != Some(Operation::Push) {
            return Err("only a=sendonly file offers are taken".into());
        }
        let selector = media
            .file_selector()
            .ok_or("the offer has no a=file-selector")?;
        let size = selector.size.ok_or("the file-selector has no size")?;
        let server_path = server_path(&sdp)?;
        let file = IncomingFile {
            kind: OfferKind::Push,
            from: invite.from().uri().to_string(),
            name: selector.name.clone(),
            content_type: selector
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            size,
            sha256: sha256_of(selector),
            url: None,
        };
        let transfer = Self {
            file: file.clone(),
            session: None,
            local: None,
            server_path,
            dialog: None,
            resume_from: 0,
            reassembly: None,
            phase: Phase::Invited {
                invite: invite.clone(),
            },
        };
        Ok((transfer, file))
    }

    /// A pull offer: the receiver AS's MESSAGE with the FT-HTTP file-info.
    pub(super) fn offered(message: &SipMessage) -> Result<(Self, IncomingFile), String> {
        let info = FileInfoDocument::parse(message.body().as_ref()).map_err(|e| e.to_string())?;
        let file = IncomingFile {
            kind: OfferKind::Pull,
            from: message.from().uri().to_string(),
            name: info.file.name.clone(),
            content_type: info.file.content_type.clone(),
            size: info.file.size,
            sha256: info.file.digest.map(|digest| digest.0),
            url: Some(info.file.url.as_str().to_owned()),
        };
        let transfer = Self {
            file: file.clone(),
            session: None,
            local: None,
            server_path: Vec::new(),
            dialog: None,
            resume_from: 0,
            reassembly: None,
            phase: Phase::Offered {
                sender: message.from().uri().clone(),
            },
        };
        Ok((transfer, file))
    }

    pub(super) fn restore(
        ua: &mut UserAgent,
        id: TransferId,
        checkpoint: IncomingCheckpoint,
    ) -> Result<Self, ClientError> {
        let reassembly = checkpoint.message_id.as_deref().map(|message_id| {
            let mut received = RangeSet::new();
            // A fresh set takes one range.
            let _ = received.insert(0..checkpoint.written.min(checkpoint.file.size));
            Reassembly::with_ranges(message_id, checkpoint.file.size, received)
        });
        let mut transfer = Self {
            file: checkpoint.file,
            session: Some(checkpoint.session),
            local: Some(checkpoint.local),
            server_path: checkpoint.server_path,
            dialog: checkpoint.dialog,
            resume_from: checkpoint.written,
            reassembly,
            phase: Phase::Receiving {
                bind: String::new(),
            },
        };
        transfer.bind(ua, id)?;
        Ok(transfer)
    }

    pub(super) fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    pub(super) fn owns_response(&self, response: &SipMessage) -> bool {
        matches!(&self.phase, Phase::Requesting { invite } if invite.call_id() == response.call_id())
    }

    /// The pushed INVITE still waiting for an answer that `cancel` cancels (RFC 3261 section 9.2:
    /// same Call-ID, From tag, CSeq number and top Via branch).
    pub(super) fn invite_cancelled_by(&self, cancel: &SipMessage) -> Option<&SipMessage> {
        let Phase::Invited { invite } = &self.phase else {
            return None;
        };
        (invite.call_id() == cancel.call_id()
            && invite.from().tag() == cancel.from().tag()
            && invite.cseq().seq == cancel.cseq().seq
            && invite.via().branch().is_some()
            && invite.via().branch() == cancel.via().branch())
        .then_some(invite)
    }

    pub(super) fn owns_request(&self, request: &SipMessage) -> bool {
        self.dialog.as_ref().is_some_and(|d| d.matches(request))
    }

    pub(super) fn checkpoint(&self) -> Option<IncomingCheckpoint> {
        if !matches!(self.phase, Phase::Receiving { .. } | Phase::Verifying) {
            return None;
        }
        let written = self
            .reassembly
            .as_ref()
            .map_or(self.resume_from, |r| r.received().contiguous_prefix());
        Some(IncomingCheckpoint {
            file: self.file.clone(),
            session: self.session.clone()?,
            local: self.local.clone()?,
            server_path: self.server_path.clone(),
            dialog: self.dialog.clone(),
            message_id: self.reassembly.as_ref().map(|r| r.message_id().to_owned()),
            written,
        })
    }

    /// A fresh session id and local URI for this transfer.
    fn open_session(&mut self, ua: &mut UserAgent) -> (String, MsrpUri) {
        let session = ua.ids.msrp_id();
        let local = ua.msrp_uri(&session);
        self.session = Some(session.clone());
        self.local = Some(local.clone());
        (session, local)
    }

    pub(super) fn accept(
        &mut self,
        ua: &mut UserAgent,
        id: TransferId,
        resume_from: u64,
    ) -> Result<(), ClientError> {
        match &self.phase {
            Phase::Invited { invite } => {
                let invite = invite.clone();
                self.accept_push(ua, &invite)
            }
            Phase::Offered { sender } => {
                let sender = sender.clone();
                self.request_pull(ua, sender, resume_from.min(self.file.size))
            }
            _ => Err(ClientError::WrongState {
                id,
                expected: "offered",
            }),
        }
    }

    fn accept_push(&mut self, ua: &mut UserAgent, invite: &SipMessage) -> Result<(), ClientError> {
        let offer = SessionDescription::parse(invite.body())?;
        let (_, local) = self.open_session(ua);
        let params = AnswerParams {
            username: ua.config.user.clone(),
            session_id: u64::from(ua.ids.number(1_000_000)),
            session_version: 1,
            connection: Connection::ip4(&ua.host),
            port: 9,
            path: vec![local.to_string()],
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: Some(Setup::Active),
        };
        let answer = sdp::answer(&offer, &params)?;
        let tag = ua.ids.tag();
        let mut ok = sip::response(invite, 200, "OK", Some(&tag))?;
        ok.push_header(
            "Contact",
            &format!("<sip:{}@{};transport=ws>", ua.config.user, ua.host),
        )?;
        ok.set_body(Some("application/sdp"), Bytes::from(answer.to_bytes()))?;
        self.dialog = Some(Dialog::uas(invite, &ok)?);
        ua.transmit_sip(&ok);
        self.phase = Phase::AwaitingAck;
        Ok(())
    }

    /// The download request of claim 12: an `a=recvonly` INVITE naming the file by its selector.
    fn request_pull(
        &mut self,
        ua: &mut UserAgent,
        sender: SipUri,
        resume_from: u64,
    ) -> Result<(), ClientError> {
        let (_, local) = self.open_session(ua);
        let selector = FileSelector {
            name: self.file.name.clone(),
            content_type: Some(self.file.content_type.clone()),
            size: Some(self.file.size),
            hashes: self
                .file
                .sha256
                .map(|sha| FileHash {
                    algorithm: "sha-256".into(),
                    bytes: sha.to_vec(),
                })
                .into_iter()
                .collect(),
        };
        let mut request = ua
            .file_offer(&local, Operation::Pull, selector, None)
            .build()?;
        if resume_from > 0
            && let Some(media) = request.msrp_media_mut()
        {
            media.attributes.push(Attribute::FileRange(FileRange {
                start: resume_from + 1,
                stop: Some(self.file.size),
            }));
        }
        let invite = ua.invite(sender, Bytes::from(request.to_bytes()))?;
        self.resume_from = resume_from;
        self.phase = Phase::Requesting { invite };
        Ok(())
    }

    pub(super) fn decline(&mut self, ua: &mut UserAgent) -> Result<(), ClientError> {
        if let Phase::Invited { invite } = &self.phase {
            let tag = ua.ids.tag();
            let response = sip::response(invite, 603, "Decline", Some(&tag))?;
            ua.transmit_sip(&response);
        }
        Ok(())
    }

    /// The answer to the pull request. Returns whether the transfer goes on.
    pub(super) fn on_sip_response(
        &mut self,
        ua: &mut UserAgent,
        id: TransferId,
        response: &SipMessage,
    ) -> bool {
        let Phase::Requesting { invite } = &self.phase else {
            return true;
        };
        let invite = invite.clone();
        let status = response.status().unwrap_or(0);
        if status < 200 || *response.method() != Method::Invite {
            return true;
        }
        if status >= 300 {
            if let Ok(ack) = crate::sip::ack_for_failure(&invite, response, &mut ua.ids) {
                ua.transmit_sip(&ack);
            }
            ua.emit_transfer(id, TransferEvent::Failed(Refusal::of(response)));
            return false;
        }
        let started = Dialog::uac(&invite, response)
            .map_err(|e| e.to_string())
            .and_then(|dialog| {
                let sdp = SessionDescription::parse(response.body()).map_err(|e| e.to_string())?;
                Ok((dialog, server_path(&sdp)?))
            });
        match started {
            Ok((dialog, path)) => {
                if let Ok(ack) = dialog.ack(&mut ua.ids) {
                    ua.transmit_sip(&ack);
                }
                self.dialog = Some(dialog);
                self.server_path = path;
                if let Err(error) = self.bind(ua, id) {
                    self.fail(ua, id, 500, error.to_string());
                    return false;
                }
                true
            }
            Err(why) => {
                ua.refuse_answer(id, &invite, response, why);
                false
            }
        }
    }

    /// The server's ACK for our 200 to its push INVITE: the session is ready for MSRP.
    pub(super) fn on_ack(&mut self, ua: &mut UserAgent, id: TransferId) {
        if matches!(self.phase, Phase::AwaitingAck)
            && let Err(error) = self.bind(ua, id)
        {
            self.fail(ua, id, 500, error.to_string());
        }
    }

    /// A new MSRP connection: bind it if the delivery is still going.
    pub(super) fn rebind(&mut self, ua: &mut UserAgent, id: TransferId) {
        if matches!(self.phase, Phase::Receiving { .. } | Phase::Verifying)
            && let Err(error) = self.bind(ua, id)
        {
            self.fail(ua, id, 500, error.to_string());
        }
    }

    /// A bodiless SEND binds the connection to the session (RFC 4975 section 5.4); the receiver AS
    /// starts (or goes on) sending when it gets it.
    fn bind(&mut self, ua: &mut UserAgent, id: TransferId) -> Result<(), ClientError> {
        let local = self.local.clone().ok_or(ClientError::WrongState {
            id,
            expected: "accepted",
        })?;
        let tid = ua.ids.msrp_id();
        let bind = Request::new(
            &tid,
            msrp::Method::Send,
            self.server_path.clone(),
            vec![local],
        )?;
        ua.transmit_msrp(Side::Receiver, &Frame::Request(bind));
        if !matches!(self.phase, Phase::Verifying) {
            self.phase = Phase::Receiving { bind: tid };
        }
        Ok(())
    }

    pub(super) fn on_msrp(&mut self, ua: &mut UserAgent, id: TransferId, frame: Frame) -> bool {
        let Some(local) = self.local.clone() else {
            return true;
        };
        let request = match frame {
            Frame::Response(response) => {
                let refused = matches!(&self.phase, Phase::Receiving { bind } if *bind == response.transaction_id)
                    && !response.is_success();
                if refused {
                    let reason = response.comment.clone().unwrap_or_default();
                    self.fail(ua, id, response.code, reason);
                    return false;
                }
                return true;
            }
            Frame::Request(request) => request,
        };
        if request.method != msrp::Method::Send {
            if request.method != msrp::Method::Report
                && let Some(response) = request.response(501, None, &local)
            {
                ua.transmit_msrp(Side::Receiver, &Frame::Response(response));
            }
            return true;
        }
        let Some(body) = request.body.clone() else {
            if let Some(response) = request.response(200, None, &local) {
                ua.transmit_msrp(Side::Receiver, &Frame::Response(response));
            }
            let ours = self
                .reassembly
                .as_ref()
                .is_none_or(|r| request.message_id() == Some(r.message_id()));
            if request.continuation == msrp::Continuation::Aborted
                && ours
                && matches!(self.phase, Phase::Receiving { .. })
            {
                if let Some(reassembly) = self.reassembly.as_mut() {
                    reassembly.abort(msrp::AbortReason::SenderAborted);
                }
                self.phase = Phase::Reported;
                ua.emit_transfer(id, TransferEvent::Aborted);
            }
            return true;
        };
        if matches!(
            self.phase,
            Phase::Invited { .. }
                | Phase::Offered { .. }
                | Phase::AwaitingAck
                | Phase::Requesting { .. }
        ) {
            if let Some(response) = request.response(481, None, &local) {
                ua.transmit_msrp(Side::Receiver, &Frame::Response(response));
            }
            return true;
        }
        let size = self.file.size;
        let resume_from = self.resume_from.min(size);
        let reassembly = self.reassembly.get_or_insert_with(|| {
            let mut received = RangeSet::new();
            let _ = received.insert(0..resume_from);
            Reassembly::with_ranges(request.message_id().unwrap_or(""), size, received)
        });
        match reassembly.on_chunk(&request) {
            Ok(outcome) => {
                for (offset, data) in outcome.new_slices(&body) {
                    ua.emit_transfer(id, TransferEvent::Write { offset, data });
                }
                if let Some(response) = request.response(200, None, &local) {
                    ua.transmit_msrp(Side::Receiver, &Frame::Response(response));
                }
                if outcome.complete && matches!(self.phase, Phase::Receiving { .. }) {
                    self.phase = Phase::Verifying;
                    ua.emit_transfer(id, TransferEvent::Received { size });
                }
            }
            Err(error) => {
                let code = match error {
                    MsrpError::MessageTooLarge { .. } | MsrpError::ChunkBeyondTotal { .. } => 413,
                    _ => 400,
                };
                if let Some(response) = request.response(code, Some(&error.to_string()), &local) {
                    ua.transmit_msrp(Side::Receiver, &Frame::Response(response));
                }
            }
        }
        true
    }

    pub(super) fn digest_computed(
        &mut self,
        ua: &mut UserAgent,
        id: TransferId,
        sha256: [u8; 32],
    ) -> Result<(), ClientError> {
        if !matches!(self.phase, Phase::Verifying)
            || !self
                .reassembly
                .as_ref()
                .is_some_and(Reassembly::is_complete)
        {
            return Err(ClientError::WrongState {
                id,
                expected: "complete and waiting for its digest",
            });
        }
        let matches = self.file.sha256.is_none_or(|expected| expected == sha256);
        let (code, comment) = if matches {
            (200, None)
        } else {
            (
                400,
                Some("the file does not hash to the announced digest".to_owned()),
            )
        };
        self.report(ua, code, comment)?;
        self.phase = Phase::Reported;
        let event = match self.file.sha256 {
            Some(expected) if !matches => TransferEvent::DigestMismatch {
                expected,
                actual: sha256,
            },
            _ => TransferEvent::Verified,
        };
        ua.emit_transfer(id, event);
        Ok(())
    }

    /// The REPORT about the whole file (RFC 4975 section 7.1.2), to the server's path.
    fn report(
        &self,
        ua: &mut UserAgent,
        code: u16,
        comment: Option<String>,
    ) -> Result<(), ClientError> {
        let (Some(local), Some(reassembly)) = (self.local.clone(), &self.reassembly) else {
            return Ok(());
        };
        let mut report = Request::new(
            &ua.ids.msrp_id(),
            msrp::Method::Report,
            self.server_path.clone(),
            vec![local],
        )?;
        report.headers.set_message_id(reassembly.message_id())?;
        report
            .headers
            .set_byte_range(ByteRange::whole(self.file.size));
        report.headers.set_status(StatusHeader {
            namespace: 0,
            code,
            comment: comment.or_else(|| msrp::status::comment(code).map(str::to_owned)),
        })?;
        ua.transmit_msrp(Side::Receiver, &Frame::Request(report));
        Ok(())
    }

    fn fail(&mut self, ua: &mut UserAgent, id: TransferId, status: u16, reason: String) {
        if let Some(dialog) = self.dialog.as_mut()
            && let Ok(bye) = dialog.request(Method::Bye, &mut ua.ids)
        {
            ua.transmit_sip(&bye);
        }
        ua.emit_transfer(id, TransferEvent::Failed(Refusal { status, reason }));
    }
}

/// The MSRP path an offer or answer names.
fn server_path(sdp: &SessionDescription) -> Result<Vec<MsrpUri>, String> {
    let media = sdp.msrp_media().ok_or("no MSRP media")?;
    let path = media
        .path()
        .ok_or("no a=path")?
        .iter()
        .map(|uri| uri.parse::<MsrpUri>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a=path: {e}"))?;
    if path.is_empty() {
        return Err("empty a=path".into());
    }
    Ok(path)
}
