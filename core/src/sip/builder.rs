//! Building requests (RFC 3261 section 8.1.1, RFC 7118 section 5.2), responses (section 8.2.6) and
//! CANCELs (section 9.1). Every random value comes from the caller's [`TokenSource`].

use bytes::Bytes;

use super::SipError;
use super::grammar::{Cursor, is_token_str};
use super::header::{MAX_CSEQ, MAX_INITIAL_CSEQ, Method, NameAddr, Transport};
use super::message::{Header, SipMessage, check_call_id, checked_header};
use super::uri::{Host, SipUri};
use crate::ids::{BRANCH_MAGIC_COOKIE, TokenSource};

/// A random host under `.invalid`, as an RFC 7118 client puts in its Via and Contact (section 5.2):
/// 12 hex characters, e.g. `3f9a0c1d2e4b.invalid`. Draw it once per user agent and pass it to
/// [`RequestBuilder::local_host`] so Via and Contact stay stable across requests.
pub fn random_invalid_host(ids: &mut TokenSource) -> String {
    format!("{}.invalid", ids.token(6))
}

/// The RFC 3261 reason phrase for `code` (and a few from later RFCs), if this module knows it.
pub fn reason_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => return None,
    })
}

/// Whether Contact is written, and how.
#[derive(Clone, Debug)]
enum ContactMode {
    /// The default for the method: REGISTER, INVITE and OPTIONS carry one.
    Auto,
    Off,
    On,
    Explicit(NameAddr),
}

/// Builds an out-of-dialog request as an RFC 7118 client sends it: Via `SIP/2.0/WSS <host>.invalid`
/// with a fresh `z9hG4bK` branch, Max-Forwards 70, From with a tag, To, Call-ID, CSeq, Contact
/// `<sip:user@<host>.invalid;transport=ws>` where it belongs, then Route, Expires, extra headers and the
/// body. Content-Length is written by [`SipMessage::to_bytes`].
///
/// A `tag` already in `from` or `to` is kept (in-dialog requests); otherwise From gets a random tag and
/// To none.
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    method: Method,
    request_uri: SipUri,
    from: NameAddr,
    to: NameAddr,
    transport: Transport,
    local_host: Option<String>,
    call_id: Option<String>,
    cseq: Option<u32>,
    branch: Option<String>,
    contact: ContactMode,
    contact_user: Option<String>,
    contact_uri_params: Vec<(String, Option<String>)>,
    contact_params: Vec<(String, Option<String>)>,
    routes: Vec<NameAddr>,
    expires: Option<u32>,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

impl RequestBuilder {
    /// A request `method` to `request_uri`, from `from` to `to`.
    pub fn new(method: Method, request_uri: SipUri, from: NameAddr, to: NameAddr) -> Self {
        Self {
            method,
            request_uri,
            from,
            to,
            transport: Transport::Wss,
            local_host: None,
            call_id: None,
            cseq: None,
            branch: None,
            contact: ContactMode::Auto,
            contact_user: None,
            contact_uri_params: Vec::new(),
            contact_params: Vec::new(),
            routes: Vec::new(),
            expires: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// The Via transport: `WSS` (the default) or `WS`.
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The host written in Via and Contact; a fresh [`random_invalid_host`] when not set.
    #[must_use]
    pub fn local_host(mut self, host: &str) -> Self {
        self.local_host = Some(host.to_owned());
        self
    }

    /// The Call-ID (e.g. the one of an earlier REGISTER); random when not set.
    #[must_use]
    pub fn call_id(mut self, call_id: &str) -> Self {
        self.call_id = Some(call_id.to_owned());
        self
    }

    /// The CSeq number; random in `1..=2^20` when not set.
    #[must_use]
    pub fn cseq(mut self, seq: u32) -> Self {
        self.cseq = Some(seq);
        self
    }

    /// The Via branch (e.g. the INVITE's, for the ACK of a non-2xx response); fresh when not set.
    #[must_use]
    pub fn branch(mut self, branch: &str) -> Self {
        self.branch = Some(branch.to_owned());
        self
    }

    /// Writes a Contact (`true`) or not (`false`) whatever the method.
    #[must_use]
    pub fn with_contact(mut self, on: bool) -> Self {
        self.contact = if on {
            ContactMode::On
        } else {
            ContactMode::Off
        };
        self
    }

    /// Writes exactly this Contact instead of the generated one.
    #[must_use]
    pub fn contact(mut self, contact: NameAddr) -> Self {
        self.contact = ContactMode::Explicit(contact);
        self
    }

    /// The user part of the generated Contact; From's user when not set.
    #[must_use]
    pub fn contact_user(mut self, user: &str) -> Self {
        self.contact_user = Some(user.to_owned());
        self
    }

    /// Adds the `ob` URI parameter to the generated Contact (RFC 5626 outbound, as in RFC 7118
    /// section 8.2).
    #[must_use]
    pub fn outbound(mut self) -> Self {
        self.contact_uri_params.push(("ob".to_owned(), None));
        self
    }

    /// Adds a header parameter to the generated Contact, e.g. `reg-id`, `expires` or `+sip.instance`
    /// (whose value must be quoted: `"<urn:uuid:...>"`).
    #[must_use]
    pub fn contact_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.contact_params
            .push((name.to_owned(), value.map(str::to_owned)));
        self
    }

    /// `;expires=<seconds>` on the generated Contact.
    #[must_use]
    pub fn contact_expires(self, seconds: u32) -> Self {
        self.contact_param("expires", Some(&seconds.to_string()))
    }

    /// Appends a Route entry (e.g. the outbound proxy `<sip:proxy.example.com;transport=ws;lr>`).
    #[must_use]
    pub fn route(mut self, route: NameAddr) -> Self {
        self.routes.push(route);
        self
    }

    /// The Expires header.
    #[must_use]
    pub fn expires(mut self, seconds: u32) -> Self {
        self.expires = Some(seconds);
        self
    }

    /// Adds any other header (written after the generated ones, in the order added).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body and its Content-Type.
    #[must_use]
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    /// The request. Draws, in this order and only when not set: the host, the branch, the From tag,
    /// the Call-ID and the CSeq number. Fails if a value set on the builder is not valid where it goes.
    pub fn build(self, ids: &mut TokenSource) -> Result<SipMessage, SipError> {
        let host = match self.local_host {
            Some(h) => {
                let mut cur = Cursor::new(&h);
                if Host::parse_at(&mut cur).is_err() || !cur.at_end() {
                    return Err(SipError::InvalidInput { what: "local host" });
                }
                h
            }
            None => random_invalid_host(ids),
        };
        let branch = match self.branch {
            Some(b) if is_token_str(&b) => b,
            Some(_) => return Err(SipError::InvalidInput { what: "branch" }),
            None => ids.branch(),
        };
        let mut from = self.from;
        if from.tag().is_none() {
            from.set_param("tag", Some(&ids.tag()))?;
        }
        let call_id = match self.call_id {
            Some(c) => {
                check_call_id(&c).map_err(|_| SipError::InvalidInput { what: "Call-ID" })?;
                c
            }
            None => ids.call_id(),
        };
        let seq = match self.cseq {
            Some(n) if (1..=MAX_CSEQ).contains(&n) => n,
            Some(_) => {
                return Err(SipError::InvalidInput {
                    what: "CSeq (1 to 2^31 - 1)",
                });
            }
            None => ids.number(MAX_INITIAL_CSEQ),
        };

        let mut headers = vec![
            Header::new(
                "Via",
                &format!("SIP/2.0/{} {host};branch={branch}", self.transport),
            ),
            Header::new("Max-Forwards", "70"),
        ];
        for route in &self.routes {
            headers.push(Header::new("Route", &route.to_string()));
        }
        headers.push(Header::new("From", &from.to_string()));
        headers.push(Header::new("To", &self.to.to_string()));
        headers.push(Header::new("Call-ID", &call_id));
        headers.push(Header::new("CSeq", &format!("{seq} {}", self.method)));
        let contact = match self.contact {
            ContactMode::Explicit(c) => Some(c),
            ContactMode::Off => None,
            ContactMode::Auto
                if !matches!(
                    self.method,
                    Method::Register | Method::Invite | Method::Options
                ) =>
            {
                None
            }
            ContactMode::Auto | ContactMode::On => {
                let user = self.contact_user.as_deref().or_else(|| from.uri().user());
                let mut uri = SipUri::new(from.uri().scheme(), user, &host)?;
                // RFC 7118 section 5.3: `transport=ws` for both WS and WSS.
                uri.set_param("transport", Some("ws"))?;
                for (name, value) in &self.contact_uri_params {
                    uri.set_param(name, value.as_deref())?;
                }
                let mut contact = NameAddr::new(uri);
                for (name, value) in &self.contact_params {
                    contact.set_param(name, value.as_deref())?;
                }
                Some(contact)
            }
        };
        if let Some(c) = contact {
            headers.push(Header::new("Contact", &c.to_string()));
        }
        if let Some(e) = self.expires {
            headers.push(Header::new("Expires", &e.to_string()));
        }
        for (name, value) in &self.headers {
            headers.push(checked_header(name, value)?);
        }
        let body = match self.body {
            Some((content_type, body)) => {
                headers.push(checked_header("Content-Type", &content_type)?);
                body
            }
            None => Bytes::new(),
        };
        SipMessage::new_request(self.method, self.request_uri, headers, body)
    }
}

/// A response to `request` (RFC 3261 section 8.2.6): every Via, From, To (with `to_tag` added when
/// the request's To has none), Call-ID, CSeq and Timestamp copied as written, and for a 101-299
/// response to INVITE the Record-Route lines too (section 12.1.1). Add a Contact or a body with
/// [`SipMessage::push_header`] and [`SipMessage::set_body`]; use [`reason_phrase`] for `reason`.
///
/// Fails if `request` is a response, `code` is outside 100-699, `reason` holds CR or LF, `to_tag` is
/// not a token, or the request's To already carries a different tag.
pub fn response(
    request: &SipMessage,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Result<SipMessage, SipError> {
    if !request.is_request() {
        return Err(SipError::UnexpectedMessage {
            expected: "a request",
        });
    }
    if let Some(tag) = to_tag {
        if !is_token_str(tag) {
            return Err(SipError::InvalidInput { what: "To tag" });
        }
        if request.to().tag().is_some_and(|t| t != tag) {
            return Err(SipError::InvalidInput {
                what: "To tag (the request's To has another)",
            });
        }
    }
    let dialog_creating = *request.method() == Method::Invite && (101..=299).contains(&code);
    let mut headers = Vec::new();
    for h in request.headers() {
        let name = super::header::canonical_name(h.name()).unwrap_or("");
        let copy = match name {
            "Via" | "From" | "Call-ID" | "CSeq" => true,
            "Record-Route" => dialog_creating,
            "To" => {
                let value = match to_tag {
                    Some(tag) if request.to().tag().is_none() => format!("{};tag={tag}", h.value()),
                    _ => h.value().to_owned(),
                };
                headers.push(Header::new(h.name(), &value));
                false
            }
            _ => h.name().eq_ignore_ascii_case("Timestamp"),
        };
        if copy {
            headers.push(h.clone());
        }
    }
    SipMessage::new_response(code, reason, headers)
}

/// The CANCEL for an INVITE we sent (RFC 3261 section 9.1): same Request-URI, Call-ID, From, To and
/// Route, one Via equal to the INVITE's top Via (same branch), CSeq with the INVITE's number and
/// method CANCEL, Max-Forwards 70, no body.
pub fn cancel_for(invite: &SipMessage) -> Result<SipMessage, SipError> {
    let (true, Some(uri)) = (*invite.method() == Method::Invite, invite.request_uri()) else {
        return Err(SipError::UnexpectedMessage {
            expected: "an INVITE request",
        });
    };
    let mut headers = vec![
        Header::new("Via", &invite.via().to_string()),
        Header::new("Max-Forwards", "70"),
    ];
    for h in invite.headers() {
        if let Some("Route" | "From" | "To" | "Call-ID") = super::header::canonical_name(h.name()) {
            headers.push(h.clone());
        }
    }
    headers.push(Header::new(
        "CSeq",
        &format!("{} CANCEL", invite.cseq().seq),
    ));
    SipMessage::new_request(Method::Cancel, uri.clone(), headers, Bytes::new())
}

/// The ACK for a final answer of 300 or more to an INVITE we sent (RFC 3261 section 17.1.1.3): in
/// the INVITE's transaction (same branch, Call-ID, From, CSeq number, Route), with the answer's To.
pub fn ack_for_failure(
    invite: &SipMessage,
    answer: &SipMessage,
    ids: &mut TokenSource,
) -> Result<SipMessage, SipError> {
    let request_uri = invite
        .request_uri()
        .cloned()
        .ok_or(SipError::UnexpectedMessage {
            expected: "an INVITE",
        })?;
    let via = invite.via();
    let mut builder = RequestBuilder::new(
        Method::Ack,
        request_uri,
        invite.from().clone(),
        answer.to().clone(),
    )
    .transport(via.transport().clone())
    .local_host(&via.host().to_string())
    .call_id(invite.call_id())
    .cseq(invite.cseq().seq)
    .with_contact(false);
    if let Some(branch) = via.branch() {
        builder = builder.branch(branch);
    }
    for route in invite.routes() {
        builder = builder.route(route.clone());
    }
    builder.build(ids)
}

/// Whether `cancel` cancels `invite` (RFC 3261 sections 9.2 and 17.2.3): with an RFC 3261 branch, the
/// top Vias' branch and sent-by match; with an older one, Request-URI, top Via, From tag, To tag,
/// Call-ID and CSeq number all match. Call-ID and CSeq number must match in both cases.
pub fn is_cancel_of(cancel: &SipMessage, invite: &SipMessage) -> bool {
    if !cancel.is_request()
        || *cancel.method() != Method::Cancel
        || !invite.is_request()
        || *invite.method() != Method::Invite
        || cancel.call_id() != invite.call_id()
        || cancel.cseq().seq != invite.cseq().seq
    {
        return false;
    }
    let (cv, iv) = (cancel.via(), invite.via());
    match iv.branch() {
        Some(b) if b.starts_with(BRANCH_MAGIC_COOKIE) => {
            cv.branch() == Some(b) && cv.host().eq_ignore_case(iv.host()) && cv.port() == iv.port()
        }
        _ => {
            cancel.request_uri() == invite.request_uri()
                && cv == iv
                && cancel.from().tag() == invite.from().tag()
                && cancel.to().tag() == invite.to().tag()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Entropy;
    use crate::sip::{Limits, parse};

    fn ids() -> TokenSource {
        TokenSource::new(Entropy([3; 32]))
    }

    fn na(s: &str) -> NameAddr {
        NameAddr::parse(s).expect("name-addr")
    }

    fn uri(s: &str) -> SipUri {
        SipUri::parse(s).expect("uri")
    }

    fn reparse(m: &SipMessage) -> SipMessage {
        parse(&m.to_bytes(), &Limits::default()).expect("built messages parse")
    }

    fn register() -> RequestBuilder {
        RequestBuilder::new(
            Method::Register,
            uri("sip:example.com"),
            na("<sip:alice@example.com>"),
            na("<sip:alice@example.com>"),
        )
    }

    #[test]
    fn register_looks_like_rfc_7118() {
        let m = register()
            .contact_param("reg-id", Some("1"))
            .contact_param("+sip.instance", Some("\"<urn:uuid:f81-7dec-14a06cf1>\""))
            .contact_expires(600)
            .expires(600)
            .build(&mut ids())
            .expect("build");
        let via = m.via();
        assert_eq!(*via.transport(), Transport::Wss);
        assert!(via.host().is_invalid_domain());
        assert!(
            via.branch()
                .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
        );
        assert_eq!(m.max_forwards(), Some(70));
        assert!(m.from().tag().is_some_and(|t| t.len() == 16));
        assert_eq!(m.to().tag(), None);
        assert!(m.cseq().seq >= 1 && m.cseq().seq <= MAX_INITIAL_CSEQ);
        assert_eq!(m.cseq().method, Method::Register);
        assert_eq!(m.call_id().len(), 32);
        let contact = m.contact().expect("contact");
        assert_eq!(contact.uri().user(), Some("alice"));
        assert_eq!(
            contact.uri().host(),
            via.host(),
            "one random host for Via and Contact"
        );
        assert_eq!(contact.uri().transport(), Some("ws"));
        assert_eq!(contact.expires(), Some(600));
        assert_eq!(contact.param("reg-id").and_then(|p| p.value()), Some("1"));
        assert_eq!(m.expires(), Some(600));
        assert_eq!(reparse(&m), m);
        let text = String::from_utf8(m.to_bytes().to_vec()).expect("utf-8");
        assert!(text.starts_with("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS "));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        // Same seed, same message; another seed, other random values.
        assert_eq!(register().build(&mut ids()), register().build(&mut ids()));
        let other = register()
            .build(&mut TokenSource::new(Entropy([4; 32])))
            .expect("build");
        assert_ne!(
            other.call_id(),
            register().build(&mut ids()).expect("build").call_id()
        );
    }

    #[test]
    fn each_method_gets_the_right_shape() {
        let host = "k3j4h5g6f7d8.invalid";
        for (method, has_contact) in [
            (Method::Register, true),
            (Method::Invite, true),
            (Method::Options, true),
            (Method::Ack, false),
            (Method::Bye, false),
            (Method::Cancel, false),
            (Method::Message, false),
        ] {
            let m = RequestBuilder::new(
                method.clone(),
                uri("sip:bob@example.com"),
                na("\"Alice\" <sip:alice@example.com>"),
                na("<sip:bob@example.com>"),
            )
            .transport(Transport::Ws)
            .local_host(host)
            .route(na("<sip:proxy.example.com:443;transport=ws;lr>"))
            .call_id("fixed@id")
            .cseq(42)
            .build(&mut ids())
            .expect("build");
            assert_eq!(*m.method(), method);
            assert_eq!(m.cseq().seq, 42);
            assert_eq!(m.cseq().method, method);
            assert_eq!(m.call_id(), "fixed@id");
            assert_eq!(*m.via().transport(), Transport::Ws);
            assert_eq!(m.via().host().to_string(), host);
            assert_eq!(m.contact().is_some(), has_contact, "{method}");
            assert_eq!(m.routes().len(), 1);
            assert_eq!(m.from().display_name(), Some("Alice"));
            assert_eq!(reparse(&m), m);
        }
    }

    #[test]
    fn invite_with_body_outbound_and_extras() {
        let sdp = Bytes::from_static(b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n");
        let m = RequestBuilder::new(
            Method::Invite,
            uri("sip:bob@example.com"),
            na("<sip:alice@example.com>"),
            na("<sip:bob@example.com>"),
        )
        .outbound()
        .contact_user("a1")
        .header("Supported", "path, outbound, gruu")
        .body("application/sdp", sdp.clone())
        .build(&mut ids())
        .expect("build");
        let contact = m.contact().expect("contact");
        assert!(contact.uri().param("ob").is_some());
        assert_eq!(contact.uri().user(), Some("a1"));
        assert_eq!(m.header("k"), Some("path, outbound, gruu"));
        assert!(m.has_content_type("application/sdp"));
        assert_eq!(m.body(), &sdp);
        assert!(
            m.to_bytes()
                .ends_with(&[b"Content-Length: 29\r\n\r\n".as_slice(), &sdp].concat())
        );
        assert_eq!(reparse(&m), m);
        let explicit = RequestBuilder::new(
            Method::Message,
            uri("sip:bob@example.com"),
            na("<sip:as@rcs.example.com>"),
            na("<sip:bob@example.com>"),
        )
        .contact(na("<sip:as@rcs.example.com;transport=ws>"))
        .build(&mut ids())
        .expect("explicit contact");
        assert_eq!(
            explicit.contact().map(|c| c.uri().to_string()).as_deref(),
            Some("sip:as@rcs.example.com;transport=ws")
        );
        let none = register()
            .with_contact(false)
            .build(&mut ids())
            .expect("no contact");
        assert!(none.contact().is_none());
    }

    #[test]
    fn builder_refuses_bad_values() {
        let cases: Vec<(RequestBuilder, SipError)> = vec![
            (
                register().local_host("bad host"),
                SipError::InvalidInput { what: "local host" },
            ),
            (
                register().branch("a b"),
                SipError::InvalidInput { what: "branch" },
            ),
            (
                register().call_id("a b"),
                SipError::InvalidInput { what: "Call-ID" },
            ),
            (
                register().cseq(0),
                SipError::InvalidInput {
                    what: "CSeq (1 to 2^31 - 1)",
                },
            ),
            (
                register().cseq(MAX_CSEQ + 1),
                SipError::InvalidInput {
                    what: "CSeq (1 to 2^31 - 1)",
                },
            ),
            (
                register().header("X Y", "1"),
                SipError::InvalidInput {
                    what: "header name (token)",
                },
            ),
            (
                register().header("Content-Length", "1"),
                SipError::ComputedHeader {
                    name: "Content-Length",
                },
            ),
            (
                register().header("From", "<sip:x@y>"),
                SipError::DuplicateHeader {
                    header: "From",
                    field: 8,
                },
            ),
            (
                register().contact_param("x", Some("a b")),
                SipError::BadUri {
                    column: 0,
                    expected: "header parameter (token or quoted-string value)",
                },
            ),
            (
                register().contact_user("a@b"),
                SipError::InvalidInput {
                    what: "URI user or host",
                },
            ),
        ];
        for (builder, want) in cases {
            assert_eq!(builder.build(&mut ids()), Err(want));
        }
        let bad_type = register().body("text", Bytes::new()).build(&mut ids());
        assert!(matches!(
            bad_type,
            Err(SipError::BadHeader {
                header: "Content-Type",
                ..
            })
        ));
    }

    fn invite_through_proxy() -> SipMessage {
        let raw = concat!(
            "INVITE sip:bob@203.0.113.22:5060 SIP/2.0\r\n",
            "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKhjhjqw32c\r\n",
            "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n",
            "Record-Route: <sip:proxy.example.com;transport=udp;lr>,\r\n",
            "  <sip:h7kjh12s@proxy.example.com:443;transport=ws;lr>\r\n",
            "From: sip:alice@example.com;tag=asdyka899\r\n",
            "To: sip:bob@example.com\r\n",
            "Call-ID: asidkj3ss\r\n",
            "CSeq: 1 INVITE\r\n",
            "Timestamp: 54\r\n",
            "Max-Forwards: 69\r\n",
            "Contact: <sip:alice@example.com\r\n",
            "  ;gr=urn:uuid:f81-7dec-14a06cf1;ob>\r\n",
            "\r\n",
        );
        parse(raw.as_bytes(), &Limits::default()).expect("invite")
    }

    #[test]
    fn responses_copy_what_rfc_3261_says() {
        let invite = invite_through_proxy();
        let ok = response(&invite, 200, "OK", Some("bmqkjhsd")).expect("200");
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.vias(), invite.vias());
        assert_eq!(ok.from(), invite.from());
        assert_eq!(ok.to().tag(), Some("bmqkjhsd"));
        assert_eq!(ok.to().uri(), invite.to().uri());
        assert_eq!(ok.call_id(), invite.call_id());
        assert_eq!(ok.cseq(), invite.cseq());
        assert_eq!(ok.record_routes(), invite.record_routes());
        assert_eq!(ok.header("Timestamp"), Some("54"));
        assert_eq!(ok.max_forwards(), None);
        assert!(ok.contact().is_none());
        assert_eq!(reparse(&ok), ok);

        let trying =
            response(&invite, 100, reason_phrase(100).unwrap_or_default(), None).expect("100");
        assert_eq!(trying.to().tag(), None);
        assert_eq!(trying.reason(), Some("Trying"));
        assert!(
            trying.record_routes().is_empty(),
            "100 does not create a dialog"
        );
        let busy = response(&invite, 486, "Busy Here", Some("t")).expect("486");
        assert!(busy.record_routes().is_empty());

        // In-dialog: the request's To tag is kept; the same tag again is fine, another is refused.
        let mut bye = invite.clone();
        bye.set_header("To", "sip:bob@example.com;tag=bmqkjhsd")
            .expect("tag");
        assert!(response(&bye, 200, "OK", None).is_ok_and(|r| r.to().tag() == Some("bmqkjhsd")));
        assert!(response(&bye, 200, "OK", Some("bmqkjhsd")).is_ok());
        assert_eq!(
            response(&bye, 200, "OK", Some("other")),
            Err(SipError::InvalidInput {
                what: "To tag (the request's To has another)"
            })
        );
        assert_eq!(
            response(&ok, 200, "OK", None),
            Err(SipError::UnexpectedMessage {
                expected: "a request"
            })
        );
        assert_eq!(
            response(&invite, 99, "x", None),
            Err(SipError::InvalidInput {
                what: "status code (100-699)"
            })
        );
        assert_eq!(
            response(&invite, 700, "x", None),
            Err(SipError::InvalidInput {
                what: "status code (100-699)"
            })
        );
        assert_eq!(
            response(&invite, 200, "O\r\nK", None),
            Err(SipError::InvalidInput {
                what: "reason phrase"
            })
        );
        assert_eq!(
            response(&invite, 200, "OK", Some("a b")),
            Err(SipError::InvalidInput { what: "To tag" })
        );

        let mut with_contact = ok.clone();
        with_contact
            .push_header("Contact", "<sip:bob@203.0.113.22:5060;transport=udp>")
            .expect("contact");
        with_contact
            .set_body(Some("application/sdp"), Bytes::from_static(b"v=0\r\n"))
            .expect("body");
        assert_eq!(reparse(&with_contact), with_contact);
    }

    #[test]
    fn reason_phrases() {
        for (code, phrase) in [
            (100, "Trying"),
            (180, "Ringing"),
            (200, "OK"),
            (202, "Accepted"),
            (400, "Bad Request"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (413, "Request Entity Too Large"),
            (415, "Unsupported Media Type"),
            (480, "Temporarily Unavailable"),
            (481, "Call/Transaction Does Not Exist"),
            (486, "Busy Here"),
            (487, "Request Terminated"),
            (488, "Not Acceptable Here"),
            (500, "Server Internal Error"),
            (501, "Not Implemented"),
        ] {
            assert_eq!(reason_phrase(code), Some(phrase), "{code}");
        }
        assert_eq!(reason_phrase(299), None);
    }

    #[test]
    fn cancel_matches_its_invite_only() {
        let invite = RequestBuilder::new(
            Method::Invite,
            uri("sip:bob@example.com"),
            na("<sip:alice@example.com>"),
            na("<sip:bob@example.com>"),
        )
        .route(na("<sip:proxy.example.com;lr>"))
        .body("application/sdp", Bytes::from_static(b"v=0\r\n"))
        .build(&mut ids())
        .expect("invite");
        let cancel = cancel_for(&invite).expect("cancel");
        assert_eq!(*cancel.method(), Method::Cancel);
        assert_eq!(cancel.request_uri(), invite.request_uri());
        assert_eq!(cancel.vias(), &invite.vias()[..1]);
        assert_eq!(cancel.via().branch(), invite.via().branch());
        assert_eq!(cancel.cseq().seq, invite.cseq().seq);
        assert_eq!(cancel.cseq().method, Method::Cancel);
        assert_eq!(
            (cancel.from(), cancel.to(), cancel.call_id()),
            (invite.from(), invite.to(), invite.call_id())
        );
        assert_eq!(cancel.routes(), invite.routes());
        assert!(cancel.body().is_empty() && cancel.contact().is_none());
        assert!(is_cancel_of(&cancel, &invite));
        assert_eq!(reparse(&cancel), cancel);

        let mut rng = TokenSource::new(Entropy([9; 32]));
        let other_invite = RequestBuilder::new(
            Method::Invite,
            uri("sip:bob@example.com"),
            na("<sip:alice@example.com>"),
            na("<sip:bob@example.com>"),
        )
        .call_id(invite.call_id())
        .cseq(invite.cseq().seq)
        .build(&mut rng)
        .expect("other");
        assert!(!is_cancel_of(&cancel, &other_invite), "another branch");
        assert!(!is_cancel_of(&invite, &invite));
        assert!(!is_cancel_of(&cancel, &cancel));
        assert_eq!(
            cancel_for(&cancel),
            Err(SipError::UnexpectedMessage {
                expected: "an INVITE request"
            })
        );
        let ok = response(&invite, 200, "OK", Some("x")).expect("ok");
        assert!(cancel_for(&ok).is_err());

        // RFC 2543 branches: the whole top Via and the tags decide.
        let old = |branch: &str, from_tag: &str| {
            let raw = format!(
                "{m} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch={branch}\r\nFrom: <sip:a@x>;tag={from_tag}\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 5 {m}\r\n\r\n",
                m = if branch.ends_with('c') {
                    "CANCEL"
                } else {
                    "INVITE"
                }
            );
            parse(raw.as_bytes(), &Limits::default()).expect("old style")
        };
        assert!(
            !is_cancel_of(&old("1c", "t"), &old("1", "t")),
            "different Via"
        );
        let invite_old = old("1c", "t").to_bytes();
        let invite_old = String::from_utf8(invite_old.to_vec())
            .expect("utf-8")
            .replace("CANCEL", "INVITE");
        let invite_old = parse(invite_old.as_bytes(), &Limits::default()).expect("parse");
        assert!(is_cancel_of(&old("1c", "t"), &invite_old));
        let other_tag = String::from_utf8(invite_old.to_bytes().to_vec())
            .expect("utf-8")
            .replace("tag=t", "tag=u");
        assert!(!is_cancel_of(
            &old("1c", "t"),
            &parse(other_tag.as_bytes(), &Limits::default()).expect("parse")
        ));
    }

    #[test]
    fn random_hosts_are_invalid_domains() {
        let mut ids = ids();
        let a = random_invalid_host(&mut ids);
        let b = random_invalid_host(&mut ids);
        assert_ne!(a, b);
        assert!(Host::Domain(a.clone()).is_invalid_domain() && a.len() == 12 + ".invalid".len());
    }

    proptest::proptest! {
        /// Built messages with arbitrary seeds, header text and bodies write and parse back equal,
        /// and every strict prefix of what is written is refused with a truncation error.
        #[test]
        fn built_messages_round_trip_and_prefixes_fail(
            seed in proptest::prelude::any::<[u8; 32]>(),
            value in "[ -~]{0,40}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            cut in 0usize..1000,
        ) {
            let built = RequestBuilder::new(
                Method::Message,
                uri("sip:bob@example.com"),
                na("\"Al \\\"ice\\\"\" <sip:alice@example.com>"),
                na("<sip:bob@example.com>"),
            )
            .header("X-Value", &value)
            .body("application/octet-stream", Bytes::from(body))
            .build(&mut TokenSource::new(crate::ids::Entropy(seed)));
            let message = built.map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let wire = message.to_bytes();
            proptest::prop_assert_eq!(parse(&wire, &Limits::default()), Ok(message.clone()));
            let cut = cut % wire.len();
            let prefix = parse(wire.get(..cut).unwrap_or_default(), &Limits::default());
            proptest::prop_assert!(
                matches!(prefix, Err(SipError::Truncated { .. } | SipError::ContentLengthMismatch { .. })),
                "prefix of {} bytes: {:?}", cut, prefix
            );
        }
    }
}
