//! Dialogs (RFC 3261 section 12) created by INVITE: their identity, route set and sequence numbers,
//! the requests sent in them (ACK for a 2xx, BYE and others) and the checks on what arrives in them.
//!
//! A [`Dialog`] is plain data that serializes, because an edge function lives for one request and the
//! dialog must wait in the store for the next one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::SipError;
use super::header::{MAX_CSEQ, MAX_INITIAL_CSEQ, Method, NameAddr, Transport};
use super::message::{Header, SipMessage};
use super::uri::SipUri;
use crate::ids::TokenSource;

/// Where a dialog is in its life (RFC 3261 section 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DialogState {
    /// Created by a provisional (101-199) response with a To tag.
    Early,
    /// Established by a 2xx.
    Confirmed,
    /// Ended by BYE, a final error to the INVITE of an early dialog, or a 481/408 (section 12.2.1.2).
    Terminated,
}

/// Which side of the INVITE this party was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DialogRole {
    /// Sent the INVITE.
    Uac,
    /// Received the INVITE.
    Uas,
}

/// What an incoming message meant for the dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogEvent {
    /// The ACK for the 2xx that established the dialog.
    Ack,
    /// The peer ended the dialog: answer 200; the dialog is now terminated.
    Bye,
    /// Another request in the dialog (re-INVITE, MESSAGE, INFO...): the caller answers it.
    Request(Method),
    /// A response to one of our requests in the dialog; [`Dialog::state`] shows its effect. A 2xx to
    /// INVITE that arrives again means our ACK was lost: send [`Dialog::ack`] again.
    Response {
        /// The method of the request answered.
        method: Method,
        /// The status code.
        status: u16,
    },
}

/// One dialog, from either side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialog {
    role: DialogRole,
    state: DialogState,
    call_id: String,
    local_tag: String,
    remote_tag: String,
    /// The local party (From of our requests), without its tag.
    local: NameAddr,
    /// The remote party (To of our requests), without its tag.
    remote: NameAddr,
    remote_target: SipUri,
    route_set: Vec<NameAddr>,
    local_cseq: Option<u32>,
    remote_cseq: Option<u32>,
    /// CSeq number of the INVITE that created the dialog (the ACK for its 2xx reuses it).
    invite_cseq: u32,
    /// Via transport and sent-by of the requests we send in the dialog.
    via_transport: Transport,
    via_sent_by: String,
}

fn without_tag(na: &NameAddr) -> NameAddr {
    let mut na = na.clone();
    na.remove_param("tag");
    na
}

fn with_tag(na: &NameAddr, tag: &str) -> Result<NameAddr, SipError> {
    let mut na = na.clone();
    na.set_param("tag", Some(tag))?;
    Ok(na)
}

/// Checks that `response` answers `invite` and can create a dialog; returns its status code.
fn check_pair(invite: &SipMessage, response: &SipMessage) -> Result<u16, SipError> {
    if !invite.is_request() || *invite.method() != Method::Invite {
        return Err(SipError::UnexpectedMessage {
            expected: "an INVITE request",
        });
    }
    let status = response.status().unwrap_or(0);
    if !(101..=299).contains(&status)
        || *response.method() != Method::Invite
        || response.call_id() != invite.call_id()
        || response.cseq().seq != invite.cseq().seq
        || response.from().tag() != invite.from().tag()
    {
        return Err(SipError::UnexpectedMessage {
            expected: "a 101-299 response to this INVITE",
        });
    }
    Ok(status)
}

/// The INVITE's From tag and the response's To tag.
fn tags<'m>(
    invite: &'m SipMessage,
    response: &'m SipMessage,
) -> Result<(&'m str, &'m str), SipError> {
    let from = invite
        .from()
        .tag()
        .ok_or(SipError::MissingTag { header: "From" })?;
    let to = response
        .to()
        .tag()
        .ok_or(SipError::MissingTag { header: "To" })?;
    Ok((from, to))
}

impl DialogState {
    /// The state a response with `status` (101-299) leaves a new dialog in.
    fn after(status: u16) -> Self {
        if status < 200 {
            Self::Early
        } else {
            Self::Confirmed
        }
    }
}

impl Dialog {
    /// The UAC side: from the INVITE we sent and a 101-299 response with a To tag we received
    /// (section 12.1.2). The remote target is the response's Contact; the route set is its
    /// Record-Route, reversed; the local CSeq is the INVITE's.
    pub fn uac(invite: &SipMessage, response: &SipMessage) -> Result<Dialog, SipError> {
        let status = check_pair(invite, response)?;
        let (local_tag, remote_tag) = tags(invite, response)?;
        let target = response
            .contact()
            .ok_or(SipError::MissingHeader { header: "Contact" })?;
        let via = invite.via();
        Ok(Dialog {
            role: DialogRole::Uac,
            state: DialogState::after(status),
            call_id: invite.call_id().to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: remote_tag.to_owned(),
            local: without_tag(invite.from()),
            remote: without_tag(invite.to()),
            remote_target: target.uri().clone(),
            route_set: response.record_routes().iter().rev().cloned().collect(),
            local_cseq: Some(invite.cseq().seq),
            remote_cseq: None,
            invite_cseq: invite.cseq().seq,
            via_transport: via.transport().clone(),
            via_sent_by: via.sent_by(),
        })
    }

    /// The UAS side: from the INVITE we received and the 101-299 response with a To tag we send
    /// (section 12.1.1). The remote target is the INVITE's Contact; the route set is its Record-Route
    /// in order; the remote CSeq is the INVITE's and the local CSeq is empty until we send a request.
    /// Our requests in the dialog use the INVITE's Via transport and the host of our response's
    /// Contact as Via sent-by.
    pub fn uas(invite: &SipMessage, response: &SipMessage) -> Result<Dialog, SipError> {
        let status = check_pair(invite, response)?;
        let (remote_tag, local_tag) = tags(invite, response)?;
        let target = invite
            .contact()
            .ok_or(SipError::MissingHeader { header: "Contact" })?;
        let ours = response
            .contact()
            .ok_or(SipError::MissingHeader { header: "Contact" })?
            .uri();
        let via_sent_by = match ours.port() {
            Some(p) => format!("{}:{p}", ours.host()),
            None => ours.host().to_string(),
        };
        Ok(Dialog {
            role: DialogRole::Uas,
            state: DialogState::after(status),
            call_id: invite.call_id().to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: remote_tag.to_owned(),
            local: without_tag(invite.to()),
            remote: without_tag(invite.from()),
            remote_target: target.uri().clone(),
            route_set: invite.record_routes().to_vec(),
            local_cseq: None,
            remote_cseq: Some(invite.cseq().seq),
            invite_cseq: invite.cseq().seq,
            via_transport: invite.via().transport().clone(),
            via_sent_by,
        })
    }

    /// Which side we are.
    pub fn role(&self) -> DialogRole {
        self.role
    }

    /// Early, confirmed or terminated.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Our tag.
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// The peer's tag.
    pub fn remote_tag(&self) -> &str {
        &self.remote_tag
    }

    /// Our URI (From of the requests we send).
    pub fn local_uri(&self) -> &SipUri {
        self.local.uri()
    }

    /// The peer's URI (To of the requests we send).
    pub fn remote_uri(&self) -> &SipUri {
        self.remote.uri()
    }

    /// Where our requests go: the peer's Contact.
    pub fn remote_target(&self) -> &SipUri {
        &self.remote_target
    }

    /// The Route entries of our requests, first hop first.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// The CSeq number of the last request we sent in the dialog (empty on the UAS side until then).
    pub fn local_cseq(&self) -> Option<u32> {
        self.local_cseq
    }

    /// The highest CSeq number received from the peer in the dialog.
    pub fn remote_cseq(&self) -> Option<u32> {
        self.remote_cseq
    }

    /// Whether an incoming message belongs to this dialog: same Call-ID, and for a request, its From
    /// tag is the peer's and its To tag ours; for a response, the other way round.
    pub fn matches(&self, message: &SipMessage) -> bool {
        let (from, to) = (message.from().tag(), message.to().tag());
        let (expect_from, expect_to) = if message.is_request() {
            (&self.remote_tag, &self.local_tag)
        } else {
            (&self.local_tag, &self.remote_tag)
        };
        message.call_id() == self.call_id
            && from == Some(expect_from.as_str())
            && to == Some(expect_to.as_str())
    }

    /// A request in the dialog with CSeq `seq`, routed by the route set (loose routing; a first route
    /// without `lr` is used as strict router, section 12.2.1.1).
    fn build(
        &self,
        method: Method,
        seq: u32,
        ids: &mut TokenSource,
    ) -> Result<SipMessage, SipError> {
        let mut routes: Vec<NameAddr> = self.route_set.clone();
        let request_uri = match routes.first() {
            Some(first) if first.uri().param("lr").is_none() => {
                let uri = first.uri().clone();
                routes.remove(0);
                routes.push(NameAddr::new(self.remote_target.clone()));
                uri
            }
            _ => self.remote_target.clone(),
        };
        let mut headers = vec![
            Header::new(
                "Via",
                &format!(
                    "SIP/2.0/{} {};branch={}",
                    self.via_transport,
                    self.via_sent_by,
                    ids.branch()
                ),
            ),
            Header::new("Max-Forwards", "70"),
        ];
        for r in &routes {
            headers.push(Header::new("Route", &r.to_string()));
        }
        headers.push(Header::new(
            "From",
            &with_tag(&self.local, &self.local_tag)?.to_string(),
        ));
        headers.push(Header::new(
            "To",
            &with_tag(&self.remote, &self.remote_tag)?.to_string(),
        ));
        headers.push(Header::new("Call-ID", &self.call_id));
        headers.push(Header::new("CSeq", &format!("{seq} {method}")));
        SipMessage::new_request(method, request_uri, headers, Bytes::new())
    }

    /// The ACK for the 2xx to the INVITE that created the dialog (section 13.2.2.4): same CSeq number,
    /// method ACK, a new branch, sent to the remote target through the route set. UAC only.
    pub fn ack(&self, ids: &mut TokenSource) -> Result<SipMessage, SipError> {
        if self.role != DialogRole::Uac {
            return Err(SipError::WrongRole {
                expected: DialogRole::Uac,
            });
        }
        self.build(Method::Ack, self.invite_cseq, ids)
    }

    /// A new request in the dialog (BYE, MESSAGE, INFO, a re-INVITE...) with the next local CSeq
    /// (section 12.2.1.1). Sending BYE terminates the dialog at once (section 15.1.1). ACK and CANCEL
    /// are not built here: use [`Dialog::ack`] and [`cancel_for`](super::cancel_for).
    pub fn request(
        &mut self,
        method: Method,
        ids: &mut TokenSource,
    ) -> Result<SipMessage, SipError> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(SipError::InvalidInput {
                what: "method (ACK and CANCEL have their own constructors)",
            });
        }
        if self.state == DialogState::Terminated {
            return Err(SipError::DialogTerminated);
        }
        let seq = match self.local_cseq {
            Some(n) if n >= MAX_CSEQ => return Err(SipError::CSeqExhausted),
            Some(n) => n + 1,
            None => ids.number(MAX_INITIAL_CSEQ),
        };
        let message = self.build(method, seq, ids)?;
        self.local_cseq = Some(seq);
        if *message.method() == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(message)
    }

    /// Applies a request the peer sent in the dialog (section 12.2.2). A CSeq lower than the remote
    /// CSeq is [`SipError::CSeqOutOfOrder`] (answer 500); a request in a terminated dialog is
    /// [`SipError::DialogTerminated`] and one from elsewhere [`SipError::DialogMismatch`] (answer 481).
    /// BYE terminates the dialog; a re-INVITE with a Contact moves the remote target.
    pub fn on_request(&mut self, request: &SipMessage) -> Result<DialogEvent, SipError> {
        if !request.is_request() {
            return Err(SipError::UnexpectedMessage {
                expected: "a request",
            });
        }
        if !self.matches(request) {
            return Err(SipError::DialogMismatch);
        }
        if self.state == DialogState::Terminated {
            return Err(SipError::DialogTerminated);
        }
        let method = request.method().clone();
        let seq = request.cseq().seq;
        // ACK and CANCEL reuse the INVITE's number and do not move the sequence.
        if !matches!(method, Method::Ack | Method::Cancel) {
            if let Some(remote) = self.remote_cseq.filter(|&r| seq < r) {
                return Err(SipError::CSeqOutOfOrder {
                    received: seq,
                    remote,
                });
            }
            self.remote_cseq = Some(seq);
        }
        Ok(match method {
            Method::Ack => DialogEvent::Ack,
            Method::Bye => {
                self.state = DialogState::Terminated;
                DialogEvent::Bye
            }
            other => {
                if let (Method::Invite, Some(contact)) = (&other, request.contact()) {
                    self.remote_target = contact.uri().clone();
                }
                DialogEvent::Request(other)
            }
        })
    }

    /// Applies a response the peer sent to one of our requests in the dialog (sections 12.2.1.2 and
    /// 13.2.2.4): a 2xx to INVITE confirms an early dialog (recomputing its route set) and refreshes
    /// the remote target; a final error to the INVITE of an early dialog, a 481 or a 408 terminates it.
    pub fn on_response(&mut self, response: &SipMessage) -> Result<DialogEvent, SipError> {
        let Some(status) = response.status() else {
            return Err(SipError::UnexpectedMessage {
                expected: "a response",
            });
        };
        if !self.matches(response) {
            return Err(SipError::DialogMismatch);
        }
        let method = response.method().clone();
        if method == Method::Invite {
            if (200..300).contains(&status) {
                if self.state == DialogState::Early && self.role == DialogRole::Uac {
                    self.state = DialogState::Confirmed;
                    self.route_set = response.record_routes().iter().rev().cloned().collect();
                }
                if let Some(contact) = response.contact() {
                    self.remote_target = contact.uri().clone();
                }
            } else if status >= 300 && self.state == DialogState::Early {
                self.state = DialogState::Terminated;
            }
        }
        if status == 481 || status == 408 {
            self.state = DialogState::Terminated;
        }
        Ok(DialogEvent::Response { method, status })
    }

    /// Applies a response we send to the INVITE of an early UAS-side dialog: a 2xx confirms it, a
    /// final error terminates it.
    pub fn on_response_sent(&mut self, response: &SipMessage) -> Result<(), SipError> {
        let Some(status) = response.status() else {
            return Err(SipError::UnexpectedMessage {
                expected: "a response",
            });
        };
        if self.role != DialogRole::Uas {
            return Err(SipError::WrongRole {
                expected: DialogRole::Uas,
            });
        }
        let ours = response.call_id() == self.call_id
            && response.from().tag() == Some(self.remote_tag.as_str())
            && response.to().tag() == Some(self.local_tag.as_str());
        if !ours {
            return Err(SipError::DialogMismatch);
        }
        if *response.method() == Method::Invite && self.state == DialogState::Early {
            if (200..300).contains(&status) {
                self.state = DialogState::Confirmed;
            } else if status >= 300 {
                self.state = DialogState::Terminated;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Entropy;
    use crate::sip::{Limits, RequestBuilder, parse, response};

    fn ids(seed: u8) -> TokenSource {
        TokenSource::new(Entropy([seed; 32]))
    }

    fn na(s: &str) -> NameAddr {
        NameAddr::parse(s).expect("name-addr")
    }

    fn reparse(m: &SipMessage) -> SipMessage {
        parse(&m.to_bytes(), &Limits::default()).expect("parse")
    }

    /// Alice's INVITE through a proxy, Bob's answer with `status` (and two Record-Routes added by the
    /// proxy on the way in, as a proxy would).
    fn exchange(status: u16) -> (SipMessage, SipMessage) {
        let invite = RequestBuilder::new(
            Method::Invite,
            SipUri::parse("sip:bob@example.com").expect("uri"),
            na("\"Alice\" <sip:alice@example.com>"),
            na("<sip:bob@example.com>"),
        )
        .route(na("<sip:proxy.example.com:443;transport=ws;lr>"))
        .local_host("a1b2c3d4e5f6.invalid")
        .build(&mut ids(1))
        .expect("invite");
        // What Bob receives: the proxy added Record-Route.
        let mut at_bob = invite.clone();
        at_bob
            .push_header(
                "Record-Route",
                "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
            )
            .expect("rr");
        let mut answer = response(&at_bob, status, "X", Some("bobtag")).expect("response");
        answer
            .push_header("Contact", "<sip:bob@198.51.100.7:5060;transport=tcp>")
            .expect("contact");
        (at_bob, reparse(&answer))
    }

    #[test]
    fn uac_and_uas_see_the_same_dialog_from_both_ends() {
        let (invite, ok) = exchange(200);
        let uac = Dialog::uac(&invite, &ok).expect("uac");
        let uas = Dialog::uas(&invite, &ok).expect("uas");
        assert_eq!(
            (uac.role(), uac.state()),
            (DialogRole::Uac, DialogState::Confirmed)
        );
        assert_eq!(
            (uas.role(), uas.state()),
            (DialogRole::Uas, DialogState::Confirmed)
        );
        assert_eq!(uac.call_id(), uas.call_id());
        assert_eq!(
            (uac.local_tag(), uac.remote_tag()),
            (uas.remote_tag(), uas.local_tag())
        );
        assert_eq!(uac.local_uri(), uas.remote_uri());
        assert_eq!(
            uac.remote_target().to_string(),
            "sip:bob@198.51.100.7:5060;transport=tcp"
        );
        assert_eq!(
            uas.remote_target().to_string(),
            invite.contact().expect("c").uri().to_string()
        );
        let rr = |d: &Dialog| {
            d.route_set()
                .iter()
                .map(|r| r.uri().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rr(&uac),
            ["sip:p1.example.com;lr", "sip:p2.example.com;lr"],
            "reversed for the UAC"
        );
        assert_eq!(rr(&uas), ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]);
        assert_eq!(
            (uac.local_cseq(), uac.remote_cseq()),
            (Some(invite.cseq().seq), None)
        );
        assert_eq!(
            (uas.local_cseq(), uas.remote_cseq()),
            (None, Some(invite.cseq().seq))
        );
        assert!(uac.matches(&ok));
        assert!(
            !uas.matches(&ok),
            "a response to the UAS's own INVITE does not come in"
        );
    }

    #[test]
    fn ack_and_bye_from_the_uac() {
        let (invite, ok) = exchange(200);
        let mut uac = Dialog::uac(&invite, &ok).expect("uac");
        let ack = uac.ack(&mut ids(2)).expect("ack");
        assert_eq!(*ack.method(), Method::Ack);
        assert_eq!(ack.cseq().seq, invite.cseq().seq);
        assert_ne!(ack.via().branch(), invite.via().branch());
        assert_eq!(ack.via().sent_by(), "a1b2c3d4e5f6.invalid");
        assert_eq!(ack.request_uri(), Some(uac.remote_target()));
        assert_eq!(ack.routes(), uac.route_set());
        assert_eq!(ack.from().tag(), invite.from().tag());
        assert_eq!(ack.from().display_name(), Some("Alice"));
        assert_eq!(ack.to().tag(), Some("bobtag"));
        assert_eq!(ack.max_forwards(), Some(70));
        assert_eq!(reparse(&ack), ack);

        let mut uas = Dialog::uas(&invite, &ok).expect("uas");
        assert_eq!(uas.on_request(&ack), Ok(DialogEvent::Ack));
        assert_eq!(
            uas.remote_cseq(),
            Some(invite.cseq().seq),
            "ACK does not move the sequence"
        );

        let message = uac.request(Method::Message, &mut ids(3)).expect("message");
        assert_eq!(message.cseq().seq, invite.cseq().seq + 1);
        assert_eq!(
            uas.on_request(&message),
            Ok(DialogEvent::Request(Method::Message))
        );
        let bye = uac.request(Method::Bye, &mut ids(4)).expect("bye");
        assert_eq!(bye.cseq().seq, invite.cseq().seq + 2);
        assert_eq!(
            uac.state(),
            DialogState::Terminated,
            "BYE sent ends the dialog at once"
        );
        assert_eq!(
            uac.request(Method::Bye, &mut ids(5)),
            Err(SipError::DialogTerminated)
        );
        assert_eq!(uas.on_request(&bye), Ok(DialogEvent::Bye));
        assert_eq!(uas.state(), DialogState::Terminated);
        assert_eq!(uas.on_request(&bye), Err(SipError::DialogTerminated));

        let bye_ok = response(&bye, 200, "OK", None).expect("200 to BYE");
        assert_eq!(
            uac.on_response(&bye_ok),
            Ok(DialogEvent::Response {
                method: Method::Bye,
                status: 200
            })
        );
    }

    #[test]
    fn the_uas_checks_sequence_and_identity() {
        let (invite, ok) = exchange(200);
        let mut uac = Dialog::uac(&invite, &ok).expect("uac");
        let mut uas = Dialog::uas(&invite, &ok).expect("uas");
        let first = uac.request(Method::Options, &mut ids(6)).expect("options");
        let second = uac.request(Method::Options, &mut ids(7)).expect("options");
        assert_eq!(
            uas.on_request(&second),
            Ok(DialogEvent::Request(Method::Options))
        );
        assert_eq!(
            uas.on_request(&first),
            Err(SipError::CSeqOutOfOrder {
                received: first.cseq().seq,
                remote: second.cseq().seq
            })
        );
        assert_eq!(
            SipError::CSeqOutOfOrder {
                received: 1,
                remote: 2
            }
            .response_code(),
            500
        );
        assert_eq!(
            uas.on_request(&second),
            Ok(DialogEvent::Request(Method::Options)),
            "a retransmission"
        );

        let mut stranger = second.clone();
        stranger
            .set_header("From", "<sip:mallory@example.com>;tag=nope")
            .expect("from");
        assert_eq!(uas.on_request(&stranger), Err(SipError::DialogMismatch));
        let mut other_call = second.clone();
        other_call.set_header("Call-ID", "other").expect("call-id");
        assert!(!uas.matches(&other_call));
        assert_eq!(
            uas.on_request(&ok),
            Err(SipError::UnexpectedMessage {
                expected: "a request"
            })
        );
        assert_eq!(
            uas.on_response(&second),
            Err(SipError::UnexpectedMessage {
                expected: "a response"
            })
        );

        // A re-INVITE with a new Contact moves the remote target.
        let mut reinvite = uac.request(Method::Invite, &mut ids(8)).expect("re-INVITE");
        reinvite
            .push_header("Contact", "<sip:alice@new.invalid;transport=ws>")
            .expect("contact");
        assert_eq!(
            uas.on_request(&reinvite),
            Ok(DialogEvent::Request(Method::Invite))
        );
        assert_eq!(
            uas.remote_target().to_string(),
            "sip:alice@new.invalid;transport=ws"
        );
    }

    #[test]
    fn the_uas_sends_requests_too() {
        let (invite, ok) = exchange(200);
        let mut uas = Dialog::uas(&invite, &ok).expect("uas");
        assert_eq!(
            uas.ack(&mut ids(9)),
            Err(SipError::WrongRole {
                expected: DialogRole::Uac
            })
        );
        let bye = uas.request(Method::Bye, &mut ids(9)).expect("bye");
        assert_eq!(bye.request_uri(), invite.contact().map(|c| c.uri()));
        assert_eq!(*bye.via().transport(), Transport::Wss);
        assert_eq!(
            bye.via().sent_by(),
            "198.51.100.7:5060",
            "our Contact's host"
        );
        assert_eq!(bye.from().tag(), Some("bobtag"));
        assert_eq!(bye.to().tag(), invite.from().tag());
        assert!((1..=MAX_INITIAL_CSEQ).contains(&bye.cseq().seq));
        assert_eq!(uas.local_cseq(), Some(bye.cseq().seq));
        let mut uac = Dialog::uac(&invite, &ok).expect("uac");
        assert_eq!(uac.on_request(&bye), Ok(DialogEvent::Bye));
        assert_eq!(
            uas.request(Method::Ack, &mut ids(9)),
            Err(SipError::InvalidInput {
                what: "method (ACK and CANCEL have their own constructors)"
            })
        );
    }

    #[test]
    fn early_dialogs() {
        let (invite, ringing) = exchange(180);
        let mut uac = Dialog::uac(&invite, &ringing).expect("early");
        assert_eq!(uac.state(), DialogState::Early);
        let (_, ok) = exchange(200);
        let event = uac.on_response(&ok).expect("2xx");
        assert_eq!(
            event,
            DialogEvent::Response {
                method: Method::Invite,
                status: 200
            }
        );
        assert_eq!(uac.state(), DialogState::Confirmed);

        let mut declined = Dialog::uac(&invite, &ringing).expect("early");
        let (_, busy) = exchange(486);
        declined.on_response(&busy).expect("486");
        assert_eq!(declined.state(), DialogState::Terminated);

        let mut gone = Dialog::uac(&invite, &ok).expect("confirmed");
        let options = gone
            .request(Method::Options, &mut ids(10))
            .expect("options");
        let missing =
            response(&options, 481, "Call/Transaction Does Not Exist", None).expect("481");
        gone.on_response(&missing).expect("481");
        assert_eq!(gone.state(), DialogState::Terminated);

        let mut uas = Dialog::uas(&invite, &ringing).expect("uas early");
        assert_eq!(uas.state(), DialogState::Early);
        uas.on_response_sent(&ok).expect("sent 200");
        assert_eq!(uas.state(), DialogState::Confirmed);
        let mut uas_declined = Dialog::uas(&invite, &ringing).expect("uas early");
        uas_declined.on_response_sent(&busy).expect("sent 486");
        assert_eq!(uas_declined.state(), DialogState::Terminated);
        assert_eq!(
            uac.on_response_sent(&ok),
            Err(SipError::WrongRole {
                expected: DialogRole::Uas
            })
        );
    }

    #[test]
    fn what_cannot_make_a_dialog() {
        let (invite, ok) = exchange(200);
        let (_, trying) = exchange(100);
        let (_, busy) = exchange(486);
        let need = SipError::UnexpectedMessage {
            expected: "a 101-299 response to this INVITE",
        };
        assert_eq!(Dialog::uac(&invite, &trying), Err(need.clone()));
        assert_eq!(Dialog::uac(&invite, &busy), Err(need.clone()));
        assert_eq!(
            Dialog::uac(&ok, &ok),
            Err(SipError::UnexpectedMessage {
                expected: "an INVITE request"
            })
        );
        let mut untagged = ok.clone();
        untagged
            .set_header("To", "<sip:bob@example.com>")
            .expect("to");
        assert_eq!(
            Dialog::uac(&invite, &untagged),
            Err(SipError::MissingTag { header: "To" })
        );
        let mut no_contact = ok.clone();
        no_contact.remove_header("Contact").expect("remove");
        assert_eq!(
            Dialog::uac(&invite, &no_contact),
            Err(SipError::MissingHeader { header: "Contact" })
        );
        assert_eq!(
            Dialog::uas(&invite, &no_contact),
            Err(SipError::MissingHeader { header: "Contact" })
        );
        let mut other_cseq = ok.clone();
        other_cseq.set_header("CSeq", "999 INVITE").expect("cseq");
        assert_eq!(Dialog::uac(&invite, &other_cseq), Err(need));
    }

    #[test]
    fn strict_routing_and_serde() {
        let (invite, mut ok) = exchange(200);
        ok.set_header("Record-Route", "<sip:strict.example.com>")
            .expect("rr");
        let mut uac = Dialog::uac(&invite, &ok).expect("uac");
        let bye = uac.request(Method::Bye, &mut ids(11)).expect("bye");
        assert_eq!(
            bye.request_uri().map(ToString::to_string).as_deref(),
            Some("sip:strict.example.com")
        );
        assert_eq!(
            bye.routes().last().map(|r| r.uri().to_string()).as_deref(),
            Some("sip:bob@198.51.100.7:5060;transport=tcp"),
            "the remote target goes last"
        );

        let (invite, ok) = exchange(200);
        let dialog = Dialog::uac(&invite, &ok).expect("uac");
        let json = serde_json::to_string(&dialog).expect("json");
        let back: Dialog = serde_json::from_str(&json).expect("back");
        assert_eq!(back, dialog);
        assert_eq!(back.ack(&mut ids(12)), dialog.ack(&mut ids(12)));
    }

    #[test]
    fn the_local_cseq_stops_below_2_pow_31() {
        let (mut invite, _) = exchange(200);
        invite
            .set_header("CSeq", "2147483647 INVITE")
            .expect("cseq");
        let mut ok = response(&invite, 200, "OK", Some("bobtag")).expect("200");
        ok.push_header("Contact", "<sip:bob@198.51.100.7>")
            .expect("contact");
        let mut uac = Dialog::uac(&invite, &ok).expect("uac");
        assert_eq!(
            uac.request(Method::Bye, &mut ids(13)),
            Err(SipError::CSeqExhausted)
        );
        assert_eq!(uac.state(), DialogState::Confirmed, "nothing was sent");
        assert_eq!(SipError::CSeqExhausted.response_code(), 500);
        assert_eq!(SipError::DialogMismatch.response_code(), 481);
        assert_eq!(SipError::MissingTag { header: "From" }.response_code(), 400);
        let mut untagged = invite.clone();
        untagged
            .set_header("From", "<sip:alice@example.com>")
            .expect("from");
        let mut ok2 = response(&untagged, 200, "OK", Some("bobtag")).expect("200");
        ok2.push_header("Contact", "<sip:bob@198.51.100.7>")
            .expect("contact");
        assert_eq!(
            Dialog::uas(&untagged, &ok2),
            Err(SipError::MissingTag { header: "From" })
        );
    }
}
