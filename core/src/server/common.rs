//! What both application servers do alike: registration (RFC 3261 section 10: one record per user,
//! a binding per device, RFC 5626), connection records, one-to-one chat (RFC 3428 MESSAGE relayed to
//! every device of the recipient), the sealed requests between the servers (the first value, and
//! the device hop that hands the receiver AS a device's SIP), and the SIP and MSRP error answers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::authentication;
use super::engine::{Interrupt, Tx};
use super::{Input, Output, Rejection};
use crate::first_value::{self, ContentDigest, SigningKey, VerifiedFileRef};
use crate::ft_http::FileInfoDocument;
use crate::msrp::{self, Frame, MsrpUri, Request as MsrpRequest};
use crate::sdp::{Direction, FileSelector, SessionDescription};
use crate::server_config::ServerConfig;
use crate::service::{Delivery, WARNING_AGENT};
use crate::sip::{
    self, Dialog, INSTANCE_PARAM, Method, NameAddr, RequestBuilder, SipMessage, SipUri, Warning,
};
use crate::store::{Manifest, Record, StoreError, keys};
use crate::time::Timestamp;

/// Registration lifetime when the REGISTER does not ask for one (RFC 3261 section 10.2.1.1).
pub const DEFAULT_REGISTRATION_SECS: u32 = 3600;

/// The Contact parameter by which a user picks how files reach them (claim 12): `ft-delivery=push`
/// (the default) or `ft-delivery=pull`.
pub const DELIVERY_PARAM: &str = "ft-delivery";

/// How many devices one user may have registered at once; a REGISTER for one more is refused.
pub const MAX_DEVICES: usize = 16;

/// A user's registration (`reg/<aor>`): one binding per device. It outlives the connections: a
/// user whose record exists but who has no device connected is offline (480), a user without a
/// record is unknown (404).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The address of record, `sip:user@domain`.
    pub aor: String,
    /// The user's devices, in the order they first registered.
    pub devices: Vec<Device>,
}

impl Record for Registration {
    // 2: one binding per device, shared by both servers.
    const VERSION: u32 = 2;
}

/// One device's binding: its SIP connection and how it wants files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Its `+sip.instance`, if it gave one; without one a device is known by its Contact.
    pub instance: Option<String>,
    /// The Contact the device registered.
    pub contact: String,
    /// The gateway's id of the device's SIP connection.
    pub connection: String,
    /// When the binding lapses, in Unix seconds.
    pub expires: u64,
    /// How the device wants incoming files.
    pub delivery: Delivery,
}

impl Device {
    /// Whether messages for the device can be sent now.
    pub fn is_reachable(&self, now: Timestamp) -> bool {
        now.unix_secs() < self.expires
    }

    /// Whether `other` is the same device: the same instance, or, for devices without one, the
    /// same Contact.
    fn is_same_device(&self, instance: Option<&str>, contact: &str) -> bool {
        match (self.instance.as_deref(), instance) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, None) => self.contact == contact,
            _ => false,
        }
    }
}

impl Registration {
    /// The devices messages can be sent to now.
    pub fn reachable(&self, now: Timestamp) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(move |d| d.is_reachable(now))
    }

    /// Whether any device can be reached now.
    pub fn is_reachable(&self, now: Timestamp) -> bool {
        self.reachable(now).next().is_some()
    }

    /// The reachable device on `connection`, if there is one.
    pub fn device_on(&self, connection: &str, now: Timestamp) -> Option<&Device> {
        self.reachable(now).find(|d| d.connection == connection)
    }
}

/// How long a session record outlives its last activity before a sweep removes it, in seconds.
pub const SESSION_IDLE_SECS: u64 = 3600;

/// What a gateway connection is, so that its closing can be handled (`conn/<id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// What the connection carries.
    pub role: ConnectionRole,
    /// When a sweep may remove the record, in Unix seconds.
    pub expires: u64,
}

impl Record for ConnectionRecord {
    const VERSION: u32 = 2;
}

/// What a gateway connection carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionRole {
    /// A SIP connection signed in as this address of record, with the password of this generation
    /// of the user's account ([`crate::accounts::Account::generation`]): a password change or a
    /// deletion signs it out.
    Sip {
        aor: String,
        user: String,
        generation: u64,
    },
    /// An MSRP connection bound to this MSRP session.
    Msrp { session: String },
}

/// Records that a connection now carries `role`.
pub fn remember_connection(tx: &mut Tx<'_>, connection: &str, role: ConnectionRole, expires: u64) {
    tx.set_record(
        &keys::connection(connection),
        &ConnectionRecord { role, expires },
    );
}

/// Writes a session record, pushing its expiry a [`SESSION_IDLE_SECS`] past now.
pub fn save_session<S: Record>(
    tx: &mut Tx<'_>,
    key: &str,
    session: &mut S,
    expires: impl FnOnce(&mut S) -> &mut u64,
) {
    *expires(session) = tx.now.unix_secs().saturating_add(SESSION_IDLE_SECS);
    tx.set_record(key, session);
}

/// What to delete, at `now`, for one record of the store: the files and uploads of
/// [`store::sweep_files`](crate::store::sweep_files), and the servers' session, offer and connection records
/// once their `expires` has passed. The edge runs this over the keys it lists.
pub fn sweep(key: &str, value: &[u8], now: Timestamp) -> Vec<crate::store::StoreOp> {
    if !keys::is_session_record(key) {
        return crate::store::sweep_files(key, value, now);
    }
    #[derive(Deserialize)]
    struct Expiring {
        expires: u64,
    }
    match serde_json::from_slice::<Expiring>(value) {
        Ok(record) if now.unix_secs() >= record.expires => {
            vec![crate::store::StoreOp::Delete {
                key: key.to_owned(),
            }]
        }
        _ => Vec::new(),
    }
}

/// The address of record of a SIP URI: `sip:user@host`, lowercase host, no port or parameters.
pub fn aor_of(uri: &SipUri) -> Option<String> {
    let user = uri.user()?;
    Some(format!(
        "{}:{user}@{}",
        uri.scheme().as_str(),
        uri.host().to_string().to_ascii_lowercase()
    ))
}

/// The parsed registration of `aor`, if there is a readable one.
pub fn registration(tx: &mut Tx<'_>, aor: &str) -> Result<Option<Registration>, Interrupt> {
    tx.record::<Registration>(&keys::registration(aor))
}

/// Sends a SIP message over a connection (the one being handled, or another one).
pub fn send_sip(tx: &mut Tx<'_>, connection: &str, message: &SipMessage) {
    tx.emit(Output::Send {
        connection: connection.to_owned(),
        message: message.to_bytes(),
    });
}

/// Sends a SIP message to every device of `aor` reachable now, over the SIP connection each
/// device's binding names. A user's traffic is addressed to connections, never to a channel
/// connections subscribe to, so a connection a device has replaced by registering again gets
/// nothing more, whichever gateway carries it. Nothing is sent when the user is offline.
pub fn send_to_user(tx: &mut Tx<'_>, aor: &str, message: &SipMessage) -> Result<(), Interrupt> {
    if let Some(registered) = registration(tx, aor)? {
        for device in registered.reachable(tx.now) {
            send_sip(tx, &device.connection, message);
        }
    }
    Ok(())
}

/// Accepts a user's INVITE: answers `200` with `answer` (SDP), this server's `contact` and the To
/// tag `session_id` (which names the session), and returns the dialog it makes; an answer that
/// cannot be built is a `500` and `None`.
pub fn accept_invite(
    tx: &mut Tx<'_>,
    connection: &str,
    invite: &SipMessage,
    session_id: &str,
    contact: &SipUri,
    answer: &SessionDescription,
) -> Option<Dialog> {
    let mut response = response_to(tx, invite, 200, Some(session_id), None)?;
    let ready = response
        .push_header("Contact", &format!("<{contact}>"))
        .is_ok()
        && response
            .set_body(Some("application/sdp"), Bytes::from(answer.to_bytes()))
            .is_ok();
    match (ready, Dialog::uas(invite, &response)) {
        (true, Ok(dialog)) => {
            send_sip(tx, connection, &response);
            Some(dialog)
        }
        _ => {
            let unbuildable = Rejection::Internal("the answer could not be built".into());
            reject(tx, connection, invite, &unbuildable);
            None
        }
    }
}

/// Answers `request` on `connection` as `rejection` says: its status, and its reason as a Warning.
pub fn reject(tx: &mut Tx<'_>, connection: &str, request: &SipMessage, rejection: &Rejection) {
    reply(
        tx,
        connection,
        request,
        rejection.status(),
        Some(&rejection.to_string()),
    );
}

/// Answers `request` on `connection` with `code`; error answers carry `warning` as a Warning header
/// (RFC 3261 section 20.43, code 399: miscellaneous) so that clients can say what went wrong.
pub fn reply(
    tx: &mut Tx<'_>,
    connection: &str,
    request: &SipMessage,
    code: u16,
    warning: Option<&str>,
) {
    if let Some(response) = response_to(tx, request, code, None, warning) {
        send_sip(tx, connection, &response);
    }
}

/// A response to `request`, with `to_tag` (or a fresh tag for a final response to a request outside
/// a dialog), or `None` for an ACK, which is never answered.
pub fn response_to(
    tx: &mut Tx<'_>,
    request: &SipMessage,
    code: u16,
    to_tag: Option<&str>,
    warning: Option<&str>,
) -> Option<SipMessage> {
    if *request.method() == Method::Ack {
        return None;
    }
    let fresh_tag;
    let tag = match to_tag {
        Some(tag) => Some(tag),
        None if code >= 200 && request.to().tag().is_none() => {
            fresh_tag = tx.ids().tag();
            Some(fresh_tag.as_str())
        }
        None => None,
    };
    let reason = sip::reason_phrase(code).unwrap_or("Error");
    let mut response = sip::response(request, code, reason, tag).ok()?;
    if let Some(text) = warning {
        // A Warning that does not fit is dropped rather than failing the answer.
        let warning = Warning::miscellaneous(WARNING_AGENT, text);
        let _ = response.push_header("Warning", &warning.to_string());
    }
    Some(response)
}

/// Answers a SIP message that could not be parsed. Without a parsed Via there is nothing to route a
/// response by, so the answer copies the transaction headers as written when they can be found; a
/// message too broken for that gets no answer (RFC 3261 section 16.3 lets servers discard it), and the
/// connection stays open either way.
pub fn reply_unparsable(tx: &mut Tx<'_>, connection: &str, message: &[u8], error: &sip::SipError) {
    let Some(text) = std::str::from_utf8(message).ok() else {
        return;
    };
    let mut lines = text.split("\r\n");
    let Some(start) = lines.next() else { return };
    if start.starts_with("SIP/") {
        return; // Responses are never answered.
    }
    let copied: Vec<&str> = lines
        .take_while(|line| !line.is_empty())
        .filter(|line| {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                name.as_str(),
                "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
            )
        })
        .collect();
    if copied.len() < 5 {
        return;
    }
    let code = error.response_code();
    let reason = sip::reason_phrase(code).unwrap_or("Bad Request");
    let mut answer = format!("SIP/2.0 {code} {reason}\r\n");
    for line in copied {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    let warning = Warning::miscellaneous(WARNING_AGENT, &error.to_string());
    answer.push_str(&format!("Warning: {warning}\r\nContent-Length: 0\r\n\r\n"));
    tx.emit(Output::Send {
        connection: connection.to_owned(),
        message: Bytes::from(answer),
    });
}

/// The address of record of the request's sender, if this connection is authenticated as the
/// sender ([`authentication`]); otherwise answers 403 and returns `None`.
pub fn authenticated_caller(
    tx: &mut Tx<'_>,
    connection: &str,
    request: &SipMessage,
) -> Result<Option<String>, Interrupt> {
    let Some(aor) = aor_of(request.from().uri()) else {
        reply(tx, connection, request, 400, Some("From has no user part"));
        return Ok(None);
    };
    if authentication::identity(tx, connection)?.as_deref() == Some(aor.as_str()) {
        Ok(Some(aor))
    } else {
        reply(
            tx,
            connection,
            request,
            403,
            Some("this connection is not authenticated as the sender"),
        );
        Ok(None)
    }
}

/// The registration of the request's recipient, if one of the recipient's devices can be reached
/// now.
pub fn recipient_registration(
    tx: &mut Tx<'_>,
    request: &SipMessage,
) -> Result<Result<Registration, Rejection>, Interrupt> {
    let Some(aor) = aor_of(request.to().uri()) else {
        return Ok(Err(Rejection::NoRecipientUser));
    };
    Ok(match registration(tx, &aor)? {
        None => Err(Rejection::UnknownUser),
        Some(registered) if !registered.is_reachable(tx.now) => Err(Rejection::Offline),
        Some(registered) => Ok(registered),
    })
}

/// Like [`recipient_registration`], answering the request when the recipient cannot be reached
/// (404 unknown, 480 offline) and returning `None`.
pub fn reachable_recipient(
    tx: &mut Tx<'_>,
    connection: &str,
    request: &SipMessage,
) -> Result<Option<Registration>, Interrupt> {
    match recipient_registration(tx, request)? {
        Ok(registered) => Ok(Some(registered)),
        Err(rejection) => {
            reject(tx, connection, request, &rejection);
            Ok(None)
        }
    }
}

/// The stored, unexpired file a file-info body names by its first value, with its verified URL:
/// the document parsed, its URL verified as one this deployment signed, its manifest read. With
/// [`Arriving::Taken`], a file not stored yet that the document names an upload in progress of
/// (for the same digest) is taken as that upload's file to be.
pub fn resolve_file_info(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    body: &[u8],
    arriving: Arriving,
) -> Result<Result<ResolvedFile, Rejection>, Interrupt> {
    let document = match FileInfoDocument::parse(body) {
        Ok(document) => document,
        Err(error) => return Ok(Err(Rejection::BadFileInfo(error.to_string()))),
    };
    let verified = match first_value::verify(
        document.file.url.as_str(),
        &config.public_base,
        &config.signing_keys,
        tx.now,
    ) {
        Ok(verified) => verified,
        Err(error) => return Ok(Err(Rejection::FirstValue(error.to_string()))),
    };
    // A file still arriving is that upload's bytes only, never a stored file that happens to
    // have the digest its sender announced: a digest proves nothing until the bytes hash to it.
    if let Some(upload) = document.file.upload.filter(|_| arriving == Arriving::Taken) {
        return Ok(match arriving_file(tx, &upload, &verified.digest)? {
            Some(file) => Ok(ResolvedFile {
                manifest: file.manifest.clone(),
                verified,
                arriving: Some(Box::new(file)),
            }),
            None => Err(Rejection::NotStored),
        });
    }
    Ok(match tx.record::<Manifest>(&verified.storage_key())? {
        Some(manifest) if !manifest.is_expired(tx.now) => Ok(ResolvedFile {
            manifest,
            verified,
            arriving: None,
        }),
        Some(_) => Err(Rejection::Expired),
        None => Err(Rejection::NotStored),
    })
}

/// Whether a file-info may name an upload still in progress (`fd:upload`): only in the sender
/// AS's sealed first value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arriving {
    /// The file must be stored whole.
    Refused,
    /// The file may still be arriving.
    Taken,
}

/// A file-info's file, found in the store.
pub struct ResolvedFile {
    /// Its manifest; for a file still arriving, the manifest it will have.
    pub manifest: Manifest,
    /// Its verified URL.
    pub verified: VerifiedFileRef,
    /// The upload it is still arriving by, if it is.
    pub arriving: Option<Box<ArrivingFile>>,
}

/// An upload still in progress: the manifest its file will have, and how much of it can be sent.
pub struct ArrivingFile {
    /// The manifest the file will have once complete.
    pub manifest: Manifest,
    /// The leading bytes a delivery may send now ([`crate::store::UploadState::deliverable`]).
    pub deliverable: u64,
    /// When the upload is given up if nothing more arrives, in Unix seconds.
    pub expires: u64,
    /// The upload's state, to add a waiting delivery to.
    pub state: crate::store::UploadState,
}

/// The upload `upload` if it is still in progress, not abandoned, for the file with `digest`.
pub fn arriving_file(
    tx: &mut Tx<'_>,
    upload: &str,
    digest: &ContentDigest,
) -> Result<Option<ArrivingFile>, Interrupt> {
    let Some(state) = tx.record::<crate::store::UploadState>(&keys::upload(upload))? else {
        return Ok(None);
    };
    if !state.is_live() || state.is_abandoned(tx.now) || state.file.sha256 != Some(*digest) {
        return Ok(None);
    }
    let Some(manifest) = state.manifest_to_be() else {
        return Ok(None);
    };
    Ok(Some(ArrivingFile {
        manifest,
        deliverable: state.deliverable(),
        expires: state.expires,
        state,
    }))
}

/// REGISTER (RFC 3261 section 10.3): binds the device on this connection to the address of
/// record, so that what is sent to the user reaches it, and answers 200 with every binding of the
/// user. A device is known by its `+sip.instance` (RFC 5626), or by its Contact without one:
/// registering again, from this connection or a new one, replaces its own binding only, and the
/// connection it replaces gets nothing more. `Expires: 0` removes the device's binding, `Contact: *`
/// every binding of the user.
pub fn register(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    request: &SipMessage,
) -> Result<(), Interrupt> {
    let Some(aor) = aor_of(request.to().uri()) else {
        reply(tx, connection, request, 400, Some("To has no user part"));
        return Ok(());
    };
    if !request
        .to()
        .uri()
        .host()
        .to_string()
        .eq_ignore_ascii_case(&config.domain)
    {
        reply(
            tx,
            connection,
            request,
            403,
            Some("this registrar does not serve that domain"),
        );
        return Ok(());
    }
    if aor_of(request.from().uri()).as_deref() != Some(aor.as_str()) {
        reply(
            tx,
            connection,
            request,
            403,
            Some("third-party registration is not allowed"),
        );
        return Ok(());
    }
    let key = keys::registration(&aor);
    let now = tx.now;
    let mut registered = registration(tx, &aor)?.unwrap_or_else(|| Registration {
        aor: aor.clone(),
        devices: Vec::new(),
    });
    // Bindings that have lapsed are dropped whenever the record is written.
    registered.devices.retain(|d| d.is_reachable(now));
    let binding = match request.contact().filter(|_| !request.contact_is_wildcard()) {
        None if request.contact_is_wildcard() => {
            // Contact: * removes every binding (with Expires: 0, section 10.2.2).
            registered.devices.clear();
            tx.set_record(&key, &registered);
            None
        }
        // Without a Contact a REGISTER asks for the current bindings.
        None => None,
        Some(contact) => Some(contact.clone()),
    };
    if let Some(contact) = binding {
        let instance = contact
            .param(INSTANCE_PARAM)
            .and_then(|p| p.value())
            .map(|v| v.trim_matches('"').to_owned());
        let contact_uri = contact.uri().to_string();
        let asked = contact
            .expires()
            .or(request.expires())
            .unwrap_or(DEFAULT_REGISTRATION_SECS);
        let granted = asked.min(config.max_registration_secs);
        let delivery = match contact.param(DELIVERY_PARAM).and_then(|p| p.value()) {
            Some(value) if value.eq_ignore_ascii_case("pull") => Delivery::Pull,
            Some(value) if value.eq_ignore_ascii_case("push") => Delivery::Push,
            Some(_) => {
                reply(
                    tx,
                    connection,
                    request,
                    400,
                    Some("ft-delivery must be push or pull"),
                );
                return Ok(());
            }
            None => config.default_delivery,
        };
        // This device's old binding goes, and with it whatever connection it named.
        registered
            .devices
            .retain(|d| !d.is_same_device(instance.as_deref(), &contact_uri));
        if granted > 0 {
            if registered.devices.len() >= MAX_DEVICES {
                let too_many = format!("at most {MAX_DEVICES} devices may be registered at once");
                reply(tx, connection, request, 403, Some(&too_many));
                return Ok(());
            }
            let expires = now.unix_secs().saturating_add(u64::from(granted));
            registered.devices.push(Device {
                instance,
                contact: contact_uri,
                connection: connection.to_owned(),
                expires,
                delivery,
            });
            // The connection's record (who it signed in as) lives on as long as the binding.
            if let Some(mut record) =
                tx.record::<ConnectionRecord>(&keys::connection(connection))?
            {
                record.expires = record.expires.max(expires);
                tx.set_record(&keys::connection(connection), &record);
            }
        }
        tx.set_record(&key, &registered);
    }
    if let Some(mut response) = response_to(tx, request, 200, None, None) {
        for device in &registered.devices {
            let remaining = device.expires.saturating_sub(now.unix_secs());
            let mut binding = format!("<{}>;expires={remaining}", device.contact);
            if let Some(instance) = &device.instance {
                binding.push_str(&format!(";{INSTANCE_PARAM}=\"{instance}\""));
            }
            let _ = response.push_header("Contact", &binding);
        }
        if let Some(mine) = registered
            .devices
            .iter()
            .find(|d| d.connection == connection)
        {
            let remaining = mine.expires.saturating_sub(now.unix_secs());
            let _ = response.push_header("Expires", &remaining.to_string());
        }
        send_sip(tx, connection, &response);
    }
    Ok(())
}

/// A connection closed: a SIP connection's device is taken off its user's registration (the
/// user's other devices stay); an MSRP connection is forgotten by its session, which the given
/// handler pauses (it is told which connection closed, and must leave a session that has already
/// moved to another connection alone).
pub fn connection_closed(
    tx: &mut Tx<'_>,
    connection: &str,
    on_msrp_closed: impl FnOnce(&mut Tx<'_>, &str) -> Result<(), Interrupt>,
) -> Result<(), Interrupt> {
    let key = keys::connection(connection);
    let Some(record) = tx.record::<ConnectionRecord>(&key)? else {
        return Ok(());
    };
    tx.delete(&key);
    match record.role {
        ConnectionRole::Sip { aor, .. } => {
            if let Some(mut registered) = registration(tx, &aor)?
                && registered
                    .devices
                    .iter()
                    .any(|d| d.connection == connection)
            {
                registered.devices.retain(|d| d.connection != connection);
                tx.set_record(&keys::registration(&aor), &registered);
            }
            Ok(())
        }
        ConnectionRole::Msrp { session } => on_msrp_closed(tx, &session),
    }
}

/// A MESSAGE from one user to another (chat, RFC 3428): relayed to every device of the recipient
/// as a new request from the sender (to the address of record: each device takes requests for its
/// user), answered 202 Accepted (the server cannot know whether it was read).
pub fn relay_message(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    request: &SipMessage,
) -> Result<(), Interrupt> {
    let Some(_) = authenticated_caller(tx, connection, request)? else {
        return Ok(());
    };
    let Some(recipient) = reachable_recipient(tx, connection, request)? else {
        return Ok(());
    };
    let Ok(target) = SipUri::parse(&recipient.aor) else {
        reply(
            tx,
            connection,
            request,
            500,
            Some("the recipient's registration is unreadable"),
        );
        return Ok(());
    };
    let mut ids = tx.ids();
    let mut from = NameAddr::new(request.from().uri().clone());
    if let Some(name) = request.from().display_name() {
        from = from
            .with_display_name(name)
            .unwrap_or_else(|_| NameAddr::new(request.from().uri().clone()));
    }
    let content_type = request.content_type().unwrap_or("text/plain");
    let relayed = RequestBuilder::new(
        Method::Message,
        target,
        from,
        NameAddr::new(request.to().uri().clone()),
    )
    .local_host(&config.host)
    .body(content_type, request.body().clone())
    .build(&mut ids);
    match relayed {
        Ok(relayed) => {
            send_to_user(tx, &recipient.aor, &relayed)?;
            reply(tx, connection, request, 202, None);
        }
        Err(error) => reply(tx, connection, request, 400, Some(&error.to_string())),
    }
    Ok(())
}

/// OPTIONS (RFC 3261 section 11): what this server supports.
pub fn options(tx: &mut Tx<'_>, connection: &str, request: &SipMessage) {
    if let Some(mut response) = response_to(tx, request, 200, None, None) {
        let _ = response.push_header(
            "Allow",
            "REGISTER, INVITE, ACK, BYE, CANCEL, MESSAGE, OPTIONS",
        );
        let _ = response.push_header(
            "Accept",
            "application/sdp, text/plain, application/vnd.gsma.rcs-ft-http+xml",
        );
        send_sip(tx, connection, &response);
    }
}

/// Encodes an MSRP frame into one WebSocket message.
pub fn msrp_bytes(frame: &Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.encoded_len());
    frame.encode(&mut out);
    Bytes::from(out)
}

/// Answers an MSRP request with `code` and, for errors on a SEND, a failure REPORT (RFC 4975 section
/// 7.1.2) unless the sender asked for none.
pub fn msrp_reply(
    tx: &mut Tx<'_>,
    connection: &str,
    request: &MsrpRequest,
    local: &MsrpUri,
    code: u16,
    comment: Option<&str>,
) {
    if let Some(response) = request.response(code, comment, local) {
        tx.emit(Output::Send {
            connection: connection.to_owned(),
            message: msrp_bytes(&Frame::Response(response)),
        });
    }
    let reports_failure = request.method == msrp::Method::Send
        && code != 200
        && request.failure_report() != msrp::FailureReport::No
        && request.message_id().is_some();
    if reports_failure {
        let tid = tx.ids().msrp_id();
        if let Ok(report) = request.report(&tid, code, comment, request.actual_byte_range(), local)
        {
            tx.emit(Output::Send {
                connection: connection.to_owned(),
                message: msrp_bytes(&Frame::Request(report)),
            });
        }
    }
}

/// The MSRP session id a request or response is addressed to (the last To-Path URI's).
pub fn addressed_session(headers: &msrp::Headers) -> Option<&str> {
    headers.to_path().last()?.session_id.as_deref()
}

/// Answers an MSRP request that could not be parsed with a 400 carrying the parse error, when the
/// transaction id and both paths can still be read from the raw text (RFC 4975 section 7.3); a
/// message too broken for that gets no answer. The connection stays open either way.
pub fn reply_unparsable_msrp(
    tx: &mut Tx<'_>,
    connection: &str,
    message: &[u8],
    error: &msrp::MsrpError,
) {
    let head = &message[..message.len().min(16 * 1024)];
    let Some(text) = std::str::from_utf8(head).ok().or_else(|| {
        let valid = std::str::from_utf8(head).err()?.valid_up_to();
        std::str::from_utf8(&head[..valid]).ok()
    }) else {
        return;
    };
    let mut lines = text.split("\r\n");
    let mut start = lines.next().unwrap_or("").split(' ');
    let (Some("MSRP"), Some(tid), Some(method)) = (start.next(), start.next(), start.next()) else {
        return;
    };
    if method.len() == 3 && method.bytes().all(|b| b.is_ascii_digit()) {
        return; // A response: never answered.
    }
    let mut to_path = None;
    let mut from_path = None;
    for line in lines.take(2) {
        if let Some(value) = line.strip_prefix("To-Path: ") {
            to_path = value.split(' ').next_back();
        } else if let Some(value) = line.strip_prefix("From-Path: ") {
            from_path = value.split(' ').next();
        }
    }
    let (Some(local), Some(previous_hop)) = (to_path, from_path) else {
        return;
    };
    // RFC 4975 ident: 4 to 32 characters, the first alphanumeric.
    let valid_tid = (4..=32).contains(&tid.len())
        && tid
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && tid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.+%=".contains(&b));
    if !valid_tid || local.contains(['\r', '\n']) || previous_hop.contains(['\r', '\n']) {
        return;
    }
    let code = match error {
        msrp::MsrpError::BodyTooLarge { .. } => 413,
        _ => 400,
    };
    let detail = error.to_string().replace(['\r', '\n'], " ");
    let answer = format!(
        "MSRP {tid} {code} {detail}\r\nTo-Path: {previous_hop}\r\nFrom-Path: {local}\r\n-------{tid}$\r\n"
    );
    tx.emit(Output::Send {
        connection: connection.to_owned(),
        message: Bytes::from(answer),
    });
}

/// Answers an input whose handling read a record that does not decode ([`Logic::fail`]): a user's
/// SIP request gets `500` and an MSRP request `481` (its session cannot go on), each naming the
/// record; a peer request gets `500`, so that the other server ends its transfer with the reason.
///
/// [`Logic::fail`]: super::engine::Logic::fail
pub fn answer_failure(tx: &mut Tx<'_>, input: &Input, error: &StoreError) {
    let reason = error.to_string();
    match input {
        Input::Sip {
            connection,
            message,
        } => {
            if let Ok(request) = sip::parse(message, &sip::Limits::default())
                && request.is_request()
            {
                reply(tx, connection, &request, 500, Some(&reason));
            }
        }
        Input::Msrp {
            connection,
            messages,
        } => {
            for message in messages {
                let limits = msrp::Limits {
                    max_body_bytes: message.len(),
                    ..msrp::Limits::default()
                };
                if let Ok(Frame::Request(request)) = msrp::parse_message(message, &limits)
                    && let Some(local) = request.headers.to_path().last().cloned()
                {
                    msrp_reply(tx, connection, &request, &local, 481, Some(&reason));
                }
            }
        }
        Input::PeerRequest { message } => {
            if let Ok(request) = sip::parse(message, &sip::Limits::default())
                && let Some(response) = response_to(tx, &request, 500, None, Some(&reason))
            {
                tx.emit(Output::PeerResponse {
                    message: response.to_bytes(),
                });
            }
        }
        Input::Closed { .. } | Input::PeerResponse { .. } | Input::Timer { .. } => {}
    }
}

/// A user's SIP message that [`on_sip`] leaves to the server, sorted by what it is.
#[derive(Debug)]
pub enum UserSip {
    /// An INVITE.
    Invite(SipMessage),
    /// A BYE.
    Bye(SipMessage),
    /// A MESSAGE.
    Message(SipMessage),
    /// A response to a request of the server.
    Response(SipMessage),
    /// Nothing is left to do: the message was answered (REGISTER, OPTIONS, CANCEL, an unknown
    /// method, an unparsable message) or needs no answer (ACK).
    Handled,
}

/// One SIP message from a user's connection, as both servers take it: parsed (or answered 400);
/// the connection authenticated as the request's user ([`authentication::authenticate`]: 401 or
/// 403 otherwise, and a response on a connection that has not authenticated is dropped);
/// REGISTER, OPTIONS, CANCEL and unknown methods answered here; the rest handed back.
pub fn on_sip(
    tx: &mut Tx<'_>,
    config: &ServerConfig,
    connection: &str,
    bytes: &Bytes,
) -> Result<UserSip, Interrupt> {
    let message = match sip::parse_bytes(bytes.clone(), &sip::Limits::default()) {
        Ok(message) => message,
        Err(error) => {
            reply_unparsable(tx, connection, bytes, &error);
            return Ok(UserSip::Handled);
        }
    };
    if message.is_response() {
        // Only an authenticated connection answers the server's requests.
        if authentication::identity(tx, connection)?.is_none() {
            return Ok(UserSip::Handled);
        }
        return Ok(UserSip::Response(message));
    }
    if authentication::authenticate(tx, config, connection, &message)?.is_none() {
        return Ok(UserSip::Handled);
    }
    match message.method() {
        Method::Register => register(tx, config, connection, &message)?,
        Method::Invite if message.to().tag().is_some() => {
            reject(tx, connection, &message, &Rejection::ReInvite);
        }
        Method::Invite => return Ok(UserSip::Invite(message)),
        Method::Bye => return Ok(UserSip::Bye(message)),
        Method::Message => return Ok(UserSip::Message(message)),
        Method::Ack => {}
        Method::Options => options(tx, connection, &message),
        // INVITEs are answered at once, so there is never a transaction left to cancel.
        Method::Cancel => reply(tx, connection, &message, 481, None),
        _ => reply(tx, connection, &message, 501, None),
    }
    Ok(UserSip::Handled)
}

/// A session record that carries an MSRP session between this server and a user.
pub trait MsrpSession: Record {
    /// This server's MSRP URI in the session, and the user's MSRP path.
    fn endpoints(&self) -> (&MsrpUri, &[MsrpUri]);
}

/// The session an MSRP request is addressed to, with its id, if the session exists and the request
/// comes from the session's peer (RFC 4975 section 7.3); otherwise the request is answered 481 or 403.
pub fn session_of_request<S: MsrpSession>(
    tx: &mut Tx<'_>,
    connection: &str,
    request: &MsrpRequest,
) -> Result<Option<(String, S)>, Interrupt> {
    let Some(session_id) = addressed_session(&request.headers).map(str::to_owned) else {
        return Ok(None);
    };
    let Some(session) = tx.record::<S>(&keys::msrp_session(&session_id))? else {
        if let Some(local) = request.headers.to_path().last().cloned() {
            msrp_reply(
                tx,
                connection,
                request,
                &local,
                481,
                Some("no such session"),
            );
        }
        return Ok(None);
    };
    let from_peer = match (
        request.headers.from_path().first(),
        session.endpoints().1.last(),
    ) {
        (Some(from), Some(expected)) => from.same_endpoint(expected),
        _ => false,
    };
    if !from_peer {
        let local = session.endpoints().0.clone();
        msrp_reply(
            tx,
            connection,
            request,
            &local,
            403,
            Some("From-Path does not match the session"),
        );
        return Ok(None);
    }
    Ok(Some((session_id, session)))
}

/// A user's RFC 5547 file transfer offer, checked.
pub struct TransferOffer {
    /// The whole offer, to answer.
    pub sdp: SessionDescription,
    /// The file it names.
    pub selector: FileSelector,
    /// The file's SHA-256, if the selector gives it.
    pub sha256: Option<ContentDigest>,
    /// `a=file-transfer-id`, if present.
    pub transfer_id: Option<String>,
    /// The user's MSRP path.
    pub remote_path: Vec<MsrpUri>,
    /// The first byte asked for (`a=file-range`, 0-based; 0 without one).
    pub range_start: u64,
}

/// The file transfer offer of an INVITE whose media must have `direction`, or why it is refused.
pub fn transfer_offer(
    invite: &SipMessage,
    direction: Direction,
) -> Result<TransferOffer, Rejection> {
    if !invite.has_content_type("application/sdp") {
        return Err(Rejection::NotSdp);
    }
    let sdp =
        SessionDescription::parse(invite.body()).map_err(|e| Rejection::BadSdp(e.to_string()))?;
    let media = sdp.msrp_media().ok_or(Rejection::NoMsrpMedia)?;
    if sdp.direction_of(media) != direction {
        return Err(Rejection::WrongDirection(direction));
    }
    let selector = media
        .file_selector()
        .ok_or(Rejection::NoFileSelector)?
        .clone();
    let sha256 = match selector.hash("sha-256") {
        Some(hash) => Some(
            <[u8; 32]>::try_from(hash.bytes.as_slice())
                .map(ContentDigest)
                .map_err(|_| Rejection::BadHashLength)?,
        ),
        None => None,
    };
    let remote_path = media
        .path()
        .unwrap_or_default()
        .iter()
        .map(|uri| uri.parse::<MsrpUri>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Rejection::BadPath(e.to_string()))?;
    if remote_path.is_empty() {
        return Err(Rejection::NoPath);
    }
    Ok(TransferOffer {
        selector,
        sha256,
        transfer_id: media.file_transfer_id().map(str::to_owned),
        remote_path,
        range_start: media
            .file_range()
            .map_or(0, |range| range.start.saturating_sub(1)),
        sdp: sdp.clone(),
    })
}

/// The header that seals a request between the application servers.
pub const PEER_SEAL_HEADER: &str = "Rcs-Ft-Seal";

/// The header of a device hop that names the device's SIP connection.
pub const DEVICE_HEADER: &str = "Rcs-Ft-Device";

/// The media type of a device hop's body: the device's SIP message as it came.
const DEVICE_HOP_TYPE: &str = "message/sip";

/// The first character of a device hop's From tag, by which the sender AS tells the receiver AS's
/// answer to a hop from its answer to a first value (whose tag is a hex session id).
const DEVICE_HOP_TAG_PREFIX: char = 'h';

/// What a peer seal covers: the method, both addresses, the Call-ID, the device connection a hop
/// names and the body's SHA-256. A holder of a signed URL can therefore not make the receiver AS
/// deliver the file to anyone else or in anyone else's name, nor act for a device.
fn peer_sealed_text(request: &SipMessage) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method().as_str(),
        request.from().uri(),
        request.to().uri(),
        request.call_id(),
        request.header(DEVICE_HEADER).unwrap_or("").trim(),
        hex::encode(Sha256::digest(request.body())),
    )
}

/// A device hop: the SIP message `message` that the device signed in as `aor` sent over
/// `connection`, for the receiver AS (a download request, an answer to a delivery's INVITE, a BYE
/// of a delivery's dialog), wrapped by the sender AS, which takes every device's SIP, in a sealed
/// MESSAGE to the receiver AS. `None` if it cannot be built or sealed.
pub fn device_hop(
    config: &ServerConfig,
    tx: &mut Tx<'_>,
    aor: &str,
    connection: &str,
    message: &Bytes,
) -> Option<SipMessage> {
    let key = config.signing_keys.first()?;
    let from_uri = SipUri::parse(aor).ok()?;
    let mut ids = tx.ids();
    let mut from = NameAddr::new(from_uri.clone());
    let tag = format!("{DEVICE_HOP_TAG_PREFIX}{}", ids.tag());
    from.set_param("tag", Some(&tag)).ok()?;
    let mut hop = RequestBuilder::new(
        Method::Message,
        from_uri.clone(),
        from,
        NameAddr::new(from_uri),
    )
    .local_host(&config.host)
    .with_contact(false)
    .body(DEVICE_HOP_TYPE, message.clone())
    .build(&mut ids)
    .ok()?;
    hop.set_header(DEVICE_HEADER, connection).ok()?;
    seal_peer_request(&mut hop, key).ok()?;
    Some(hop)
}

/// The device connection and SIP message of a sealed device hop, or `None` for any other request
/// (a first value, or a hop that is not sealed by one of `keys`).
pub fn open_device_hop(request: &SipMessage, keys: &[SigningKey]) -> Option<(String, Bytes)> {
    let connection = request.header(DEVICE_HEADER)?.trim();
    let is_hop = *request.method() == Method::Message
        && request.has_content_type(DEVICE_HOP_TYPE)
        && !connection.is_empty()
        && peer_request_is_sealed(request, keys);
    is_hop.then(|| (connection.to_owned(), request.body().clone()))
}

/// Whether a peer answer is the receiver AS's answer to a device hop (which needs no action).
pub fn answers_device_hop(response: &SipMessage) -> bool {
    response
        .from()
        .tag()
        .is_some_and(|tag| tag.starts_with(DEVICE_HOP_TAG_PREFIX))
}

/// The media type of an upload's progress notice: [`UploadProgress`] as JSON.
const PROGRESS_TYPE: &str = "application/vnd.rcs-ft.upload-progress+json";

/// What the sender AS tells the receiver AS about an upload in progress that deliveries wait for
/// (cut-through delivery): more bytes are stored, or the upload has ended. It names no user and
/// carries no byte of the file: the deliveries read what is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadProgress {
    /// The upload (`up/<id>`).
    pub upload: String,
    /// The delivery sessions to go on (the ones that were waiting).
    pub deliveries: Vec<String>,
    /// Why the upload ended without the file (aborted by its sender, or the bytes did not hash to
    /// the announced digest), if it did.
    pub ended: Option<String>,
}

/// The sealed MESSAGE that hands the receiver AS an upload's progress. Its From tag starts like a
/// device hop's, so its answer needs no action either.
pub fn progress_hop(
    config: &ServerConfig,
    tx: &mut Tx<'_>,
    progress: &UploadProgress,
) -> Option<SipMessage> {
    let key = config.signing_keys.first()?;
    let server = SipUri::parse(&format!("sip:{}", config.domain)).ok()?;
    let body = serde_json::to_vec(progress).ok()?;
    let mut ids = tx.ids();
    let mut from = NameAddr::new(server.clone());
    let tag = format!("{DEVICE_HOP_TAG_PREFIX}{}", ids.tag());
    from.set_param("tag", Some(&tag)).ok()?;
    let mut hop = RequestBuilder::new(Method::Message, server.clone(), from, NameAddr::new(server))
        .local_host(&config.host)
        .with_contact(false)
        .body(PROGRESS_TYPE, Bytes::from(body))
        .build(&mut ids)
        .ok()?;
    seal_peer_request(&mut hop, key).ok()?;
    Some(hop)
}

/// The upload progress a sealed [`progress_hop`] carries, or `None` for any other request.
pub fn open_progress_hop(request: &SipMessage, keys: &[SigningKey]) -> Option<UploadProgress> {
    let is_progress = *request.method() == Method::Message
        && request.has_content_type(PROGRESS_TYPE)
        && peer_request_is_sealed(request, keys);
    if !is_progress {
        return None;
    }
    serde_json::from_slice(request.body()).ok()
}

/// Seals a request to the other application server with the first signing key.
pub fn seal_peer_request(request: &mut SipMessage, key: &SigningKey) -> Result<(), sip::SipError> {
    let seal = key.seal(peer_sealed_text(request).as_bytes());
    request.set_header(PEER_SEAL_HEADER, &seal)
}

/// Whether a request from the other application server carries a seal by one of `keys`.
pub fn peer_request_is_sealed(request: &SipMessage, keys: &[SigningKey]) -> bool {
    let Some(seal) = request.header(PEER_SEAL_HEADER) else {
        return false;
    };
    let text = peer_sealed_text(request);
    keys.iter()
        .any(|key| key.verifies(text.as_bytes(), seal.trim()))
}
