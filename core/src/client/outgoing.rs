//! Sending one file: the offer, the answer and its ACK, the chunks with a window in flight, the
//! REPORT and the server's BYE; and the user stopping it midway (a `#` chunk).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{ClientError, OutgoingFile, Refusal, TransferEvent, TransferId, UserAgent};
use crate::msrp::{self, ChunkPlan, Chunker, Frame, MsrpUri, SenderEvent, WindowedSender};
use crate::sdp::{
    self, Connection, FileHash, FileSelector, FileTransferOffer, Operation, SessionDescription,
    Setup,
};
use crate::service::Side;
use crate::sip::{Dialog, Method, SipMessage, SipUri};
use crate::time::Timestamp;

/// Where an outgoing transfer stands.
enum Phase {
    /// The INVITE is out; waiting for the final answer.
    Inviting,
    /// Sending chunks (or done sending, waiting for the REPORT and the BYE).
    Sending {
        dialog: Box<Dialog>,
        window: WindowedSender,
        chunker: Box<Chunker>,
        /// Chunks planned and announced with `NeedBytes`, by start offset, waiting for their bytes.
        planned: BTreeMap<u64, ChunkPlan>,
    },
    /// The server's BYE ended the session. The REPORT travels over the MSRP connection and may
    /// arrive after the BYE, so the session is remembered for a while to take it.
    Closed,
}

pub(super) struct Outgoing {
    session: String,
    local: MsrpUri,
    invite: SipMessage,
    file: OutgoingFile,
    phase: Phase,
    /// The user stopped the transfer: no chunk is planned any more, and the `#` chunk is sent
    /// (at once, or as soon as the offer is answered).
    stopped: bool,
}

impl Outgoing {
    /// Sends the INVITE offering `file`; the transfer waiting for its answer.
    pub(super) fn offer(
        ua: &mut UserAgent,
        to: SipUri,
        file: OutgoingFile,
        session: String,
        local: MsrpUri,
    ) -> Result<Self, ClientError> {
        let selector = FileSelector {
            name: Some(file.name.clone()),
            content_type: Some(file.content_type.clone()),
            size: Some(file.size),
            hashes: vec![FileHash {
                algorithm: "sha-256".into(),
                bytes: file.sha256.to_vec(),
            }],
        };
        let offer = ua
            .file_offer(&local, Operation::Push, selector, Some("attachment"))
            .build()?;
        let invite = ua.invite(to, Bytes::from(offer.to_bytes()))?;
        Ok(Self {
            session,
            local,
            invite,
            file,
            phase: Phase::Inviting,
            stopped: false,
        })
    }

    pub(super) fn session(&self) -> &str {
        &self.session
    }

    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        match &self.phase {
            Phase::Sending { window, .. } => window.next_deadline(),
            Phase::Inviting | Phase::Closed => None,
        }
    }

    pub(super) fn owns_response(&self, response: &SipMessage) -> bool {
        !self.is_closed() && response.call_id() == self.invite.call_id()
    }

    pub(super) fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The server's BYE arrived: only a late REPORT is still of interest.
    pub(super) fn close(&mut self) {
        self.phase = Phase::Closed;
    }

    pub(super) fn owns_request(&self, request: &SipMessage) -> bool {
        match &self.phase {
            Phase::Sending { dialog, .. } => dialog.matches(request),
            Phase::Inviting | Phase::Closed => false,
        }
    }

    /// Returns whether the transfer goes on.
    pub(super) fn on_sip_response(
        &mut self,
        ua: &mut UserAgent,
        id: TransferId,
        response: &SipMessage,
        now: Timestamp,
    ) -> bool {
        let status = response.status().unwrap_or(0);
        if *response.method() != Method::Invite || status < 200 {
            // Provisional answers, and the answer to our BYE after a failure.
            return true;
        }
        if !matches!(self.phase, Phase::Inviting) {
            // A retransmitted 2xx: our ACK was lost.
            if let Phase::Sending { dialog, .. } = &self.phase
                && let Ok(ack) = dialog.ack(&mut ua.ids)
            {
                ua.transmit_sip(&ack);
            }
            return true;
        }
        if status >= 300 {
            if let Ok(ack) = crate::sip::ack_for_failure(&self.invite, response, &mut ua.ids) {
                ua.transmit_sip(&ack);
            }
            ua.emit_transfer(id, TransferEvent::Failed(Refusal::of(response)));
            return false;
        }
        match self.start(ua, response) {
            Ok(resume_from) => {
                ua.emit_transfer(id, TransferEvent::Accepted { resume_from });
                if self.stopped {
                    self.send_abort(ua);
                } else {
                    self.pump(ua, id, now);
                    self.check_uploaded(ua, id);
                }
                true
            }
            Err(why) => {
                // The session exists on the server: end it, then report why.
                ua.refuse_answer(id, &self.invite, response, why);
                false
            }
        }
    }

    /// ACKs the 2xx and sets up sending from the answer; returns where to resume.
    fn start(&mut self, ua: &mut UserAgent, response: &SipMessage) -> Result<u64, String> {
        let dialog = Dialog::uac(&self.invite, response).map_err(|e| e.to_string())?;
        let sdp = SessionDescription::parse(response.body()).map_err(|e| e.to_string())?;
        let media = sdp.msrp_media().ok_or("the answer has no MSRP media")?;
        let server_path: Vec<MsrpUri> = media
            .path()
            .ok_or("the answer has no a=path")?
            .iter()
            .map(|uri| uri.parse::<MsrpUri>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the answer's a=path: {e}"))?;
        if server_path.is_empty() {
            return Err("the answer's a=path is empty".into());
        }
        let size = self.file.size;
        let resume_from = media
            .file_range()
            .map_or(0, |range| range.start.saturating_sub(1))
            .min(size);
        let message_id = ua.ids.msrp_id();
        let chunker = Chunker::new(
            &message_id,
            &self.file.content_type,
            Some(size),
            ua.config.chunk_size,
            server_path,
            vec![self.local.clone()],
        )
        .and_then(|chunker| chunker.with_header("Success-Report", "yes"))
        .map_err(|e| e.to_string())?;
        let ack = dialog.ack(&mut ua.ids).map_err(|e| e.to_string())?;
        ua.transmit_sip(&ack);
        let window = WindowedSender::new(
            &message_id,
            size,
            ua.config.chunk_size,
            ua.config.window,
            resume_from,
        )
        .with_timeout_ms(ua.config.msrp_timeout_ms);
        self.phase = Phase::Sending {
            dialog: Box::new(dialog),
            window,
            chunker: Box::new(chunker),
            planned: BTreeMap::new(),
        };
        Ok(resume_from)
    }

    /// The user stops sending the file. Its message ends with a `#` chunk (RFC 4975 section
    /// 7.1.1), now or once the offer is answered; the server discards the upload and its BYE ends
    /// the session ([`TransferEvent::Ended`], with the server's reason). Returns false when it is
    /// too late: every byte is sent and the server decides, or the session is over.
    pub(super) fn stop(&mut self, ua: &mut UserAgent) -> bool {
        match &self.phase {
            Phase::Closed => false,
            Phase::Sending { window, .. } if window.next_offset() >= self.file.size => false,
            Phase::Inviting => {
                self.stopped = true;
                true
            }
            Phase::Sending { .. } => {
                self.stopped = true;
                self.send_abort(ua);
                true
            }
        }
    }

    /// Sends the `#` chunk after the last byte sent, and forgets the chunks waiting for bytes.
    fn send_abort(&mut self, ua: &mut UserAgent) {
        let Phase::Sending {
            window,
            chunker,
            planned,
            ..
        } = &mut self.phase
        else {
            return;
        };
        planned.clear();
        let transaction_id = ua.ids.msrp_id();
        if let Ok(abort) = chunker.abort(&transaction_id, window.next_offset()) {
            ua.transmit_msrp(Side::Sender, &Frame::Request(abort));
        }
    }

    /// Plans as many chunks as the window allows and asks the caller for their bytes.
    fn pump(&mut self, ua: &mut UserAgent, id: TransferId, now: Timestamp) {
        let Phase::Sending {
            window, planned, ..
        } = &mut self.phase
        else {
            return;
        };
        if self.stopped {
            return;
        }
        while let Some(plan) = window.next_chunk(&mut ua.ids, now) {
            let range = plan.range.clone();
            planned.insert(range.start, plan);
            ua.emit_transfer(id, TransferEvent::NeedBytes { range });
        }
    }

    /// A resumed upload whose bytes were all stored before has nothing left to send.
    fn check_uploaded(&self, ua: &mut UserAgent, id: TransferId) {
        if let Phase::Sending { window, .. } = &self.phase
            && window.is_finished()
        {
            ua.emit_transfer(id, TransferEvent::Uploaded);
        }
    }

    pub(super) fn provide_bytes(
        &mut self,
        ua: &mut UserAgent,
        _id: TransferId,
        offset: u64,
        data: Bytes,
        _now: Timestamp,
    ) -> Result<(), ClientError> {
        if self.stopped {
            // Bytes asked for before the user stopped: nothing more is sent.
            return Ok(());
        }
        let Phase::Sending {
            chunker, planned, ..
        } = &mut self.phase
        else {
            return Err(ClientError::UnexpectedBytes {
                offset,
                len: data.len(),
            });
        };
        let fits = planned
            .get(&offset)
            .is_some_and(|plan| plan.range.end - plan.range.start == data.len() as u64);
        let plan = match planned.remove(&offset) {
            Some(plan) if fits => plan,
            other => {
                if let Some(plan) = other {
                    planned.insert(offset, plan);
                }
                return Err(ClientError::UnexpectedBytes {
                    offset,
                    len: data.len(),
                });
            }
        };
        let request = chunker.request_for(&plan, data)?;
        ua.transmit_msrp(Side::Sender, &Frame::Request(request));
        Ok(())
    }

    /// Returns whether the transfer goes on.
    pub(super) fn on_msrp(
        &mut self,
        ua: &mut UserAgent,
        id: TransferId,
        frame: Frame,
        now: Timestamp,
    ) -> bool {
        match frame {
            Frame::Response(response) => {
                let Phase::Sending { window, .. } = &mut self.phase else {
                    return true;
                };
                match window.on_response(&response.transaction_id, response.code) {
                    Ok(SenderEvent::Acknowledged { .. }) => {
                        let acknowledged = window.acknowledged();
                        ua.emit_transfer(id, TransferEvent::Progress { acknowledged });
                        self.pump(ua, id, now);
                        true
                    }
                    Ok(SenderEvent::Finished) => {
                        let acknowledged = window.acknowledged();
                        ua.emit_transfer(id, TransferEvent::Progress { acknowledged });
                        ua.emit_transfer(id, TransferEvent::Uploaded);
                        true
                    }
                    Ok(SenderEvent::Aborted { code }) => {
                        let reason = response
                            .comment
                            .clone()
                            .unwrap_or_else(|| "the server refused a chunk".into());
                        self.fail(ua, id, code, reason);
                        false
                    }
                    Ok(SenderEvent::Ignored) | Err(_) => true,
                }
            }
            Frame::Request(request) => {
                match request.method {
                    msrp::Method::Report => {
                        if let Some(status) = request.headers.status() {
                            ua.emit_transfer(
                                id,
                                TransferEvent::Report {
                                    status: status.code,
                                    comment: status.comment.clone(),
                                },
                            );
                        }
                        if self.is_closed() {
                            return false;
                        }
                    }
                    // This session only sends (a=sendonly).
                    _ => {
                        if let Some(response) = request.response(403, None, &self.local) {
                            ua.transmit_msrp(Side::Sender, &Frame::Response(response));
                        }
                    }
                }
                true
            }
        }
    }

    /// Returns whether the transfer goes on.
    pub(super) fn on_timeout(
        &mut self,
        ua: &mut UserAgent,
        id: TransferId,
        now: Timestamp,
    ) -> bool {
        let Phase::Sending { window, .. } = &mut self.phase else {
            return true;
        };
        match window.on_timeout(now) {
            Some(SenderEvent::Aborted { code }) => {
                self.fail(ua, id, code, "no answer to a chunk in time".into());
                false
            }
            _ => true,
        }
    }

    /// Ends the session with a BYE and reports why.
    fn fail(&mut self, ua: &mut UserAgent, id: TransferId, status: u16, reason: String) {
        if let Phase::Sending { dialog, .. } = &mut self.phase
            && let Ok(bye) = dialog.request(Method::Bye, &mut ua.ids)
        {
            ua.transmit_sip(&bye);
        }
        ua.emit_transfer(id, TransferEvent::Failed(Refusal { status, reason }));
    }
}

/// The SDP protocol a WebSocket client writes (RFC 7977 section 5.2.2).
impl UserAgent {
    /// This agent's SDP offer of an MSRP session at `local` for the file `file_selector`: to send
    /// it (push) or to fetch it (pull), RFC 5547 section 5.
    pub(super) fn file_offer(
        &mut self,
        local: &MsrpUri,
        operation: Operation,
        file_selector: FileSelector,
        file_disposition: Option<&str>,
    ) -> FileTransferOffer {
        FileTransferOffer {
            username: self.config.user.clone(),
            session_id: u64::from(self.ids.number(1_000_000)),
            session_version: 1,
            connection: Connection::ip4(&self.host),
            port: 9,
            proto: proto(self.config.secure).into(),
            path: vec![local.to_string()],
            accept_types: file_selector.content_type.iter().cloned().collect(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: Setup::Active,
            operation,
            file_selector,
            file_transfer_id: self.ids.token(8),
            file_disposition: file_disposition.map(str::to_owned),
            file_date: None,
            file_icon: None,
            file_range: None,
        }
    }
}

pub(super) fn proto(secure: bool) -> &'static str {
    if secure {
        sdp::PROTO_TLS
    } else {
        sdp::PROTO_TCP
    }
}
