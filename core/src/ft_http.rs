//! The GSMA RCS "File Transfer via HTTP" file-info document (RCC.07), the body of type
//! `application/vnd.gsma.rcs-ft-http+xml` that carries the first value from the sender AS to the
//! receiver AS (and on to a client on the pull path).
//!
//! This module owns the document's typed form, [`FileInfoDocument`], its parser
//! ([`FileInfoDocument::parse`]) and its writer ([`FileInfoDocument::to_xml`]):
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp"
//!       xmlns:am="urn:gsma:params:xml:ns:rcs:rcs:rram"
//!       xmlns:fd="urn:rcs-ft:params:xml:ns:digest">
//! <file-info type="thumbnail">            <!-- optional -->
//! <file-size>7427</file-size>
//! <content-type>image/jpeg</content-type>
//! <data url="https://..." until="2017-04-25T12:17:07Z"/>
//! </file-info>
//! <file-info type="file" file-disposition="render">
//! <file-size>183524</file-size>
//! <file-name>DSC_379395051.JPG</file-name>
//! <content-type>image/jpeg</content-type>
//! <am:playing-length>4046</am:playing-length>   <!-- audio messages -->
//! <data url="https://..." until="2017-04-25T12:17:07Z"/>
//! <fd:content-digest>sha-256:...</fd:content-digest>  <!-- this project's extension -->
//! <fd:upload>...</fd:upload>                          <!-- between the servers, while uploading -->
//! </file-info>
//! </file>
//! ```
//!
//! ## The project's digest extension
//! `<fd:content-digest>` in the namespace [`DIGEST_NAMESPACE`] carries the file's feature code
//! (`sha-256:<64 lowercase hex>`, see [`crate::first_value::ContentDigest`]). It is optional on parse,
//! written only when set, and in a namespace of its own so that any other RCS client ignores it.
//! `<fd:upload>` in the same namespace names the upload a first value was sent for while its bytes
//! were still arriving (cut-through delivery): [`MAX_UPLOAD_ID_BYTES`] at most of URL-unreserved
//! characters and `:`. The receiver AS believes it only in a sealed request from the sender AS.
//!
//! ## What is kept, what is ignored
//! Kept, and written back after the known content: unknown attributes of `<file>`, `<file-info>` and
//! `<data>`; unknown child elements of `<file>` and `<file-info>` with their whole subtree (elements,
//! attributes, namespaces, text); `<file-info>` elements whose `type` is neither `file` nor
//! `thumbnail` (or missing); `<data>` elements without a `url` attribute. Ignored: attributes of the
//! leaf elements (`file-size`, `file-name`, `content-type`, `am:playing-length`,
//! `fd:content-digest`), text and elements inside `<data>`, text directly inside `<file>` and
//! `<file-info>`, whitespace-only text inside extension elements, comments, processing instructions
//! and the XML declaration. Namespace prefixes are not kept, only the namespaces they stand for.
//! The `data url` is kept as written ([`DataUrl`]), so a receiver verifies the spelling the peer
//! sent rather than the `url` crate's canonical form of it.
//!
//! ## Limits and strictness
//! Input is UTF-8 only, at most [`MAX_DOCUMENT_BYTES`], at most [`MAX_DEPTH`] levels deep and
//! [`MAX_ELEMENTS`] elements, [`MAX_ATTRIBUTES`] attributes per element. A DOCTYPE is refused (so no
//! entity other than the five predefined ones and character references exists). Names must be
//! well-formed XML names, text must be XML 1.0 characters, and every prefix must be declared.
//! The root must be `file` in [`NAMESPACE`]. `until` is RFC 3339 (`Z` or a numeric offset,
//! fractional seconds dropped) and is always written back as `YYYY-MM-DDTHH:MM:SSZ`.

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

use crate::first_value::{ContentDigest, FirstValue, FirstValueError};
use crate::lex::Decimal;
use crate::time::UtcDateTime;

/// The MIME type of a file-info document.
pub const CONTENT_TYPE: &str = "application/vnd.gsma.rcs-ft-http+xml";
/// The namespace of the document's own elements (RCC.07).
pub const NAMESPACE: &str = "urn:gsma:params:xml:ns:rcs:rcs:fthttp";
/// The namespace of `playing-length`, RCC.07's audio-messaging addition.
pub const AUDIO_MESSAGE_NAMESPACE: &str = "urn:gsma:params:xml:ns:rcs:rcs:rram";
/// This project's namespace for the `content-digest` extension element.
pub const DIGEST_NAMESPACE: &str = "urn:rcs-ft:params:xml:ns:digest";
/// The longest upload id `<fd:upload>` carries, in bytes.
pub const MAX_UPLOAD_ID_BYTES: usize = 128;
/// The largest document [`FileInfoDocument::parse`] reads, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The deepest element nesting accepted (the root is level 1).
pub const MAX_DEPTH: usize = 16;
/// The most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 512;
/// The most attributes (namespace declarations included) accepted on one element.
pub const MAX_ATTRIBUTES: usize = 32;
/// The latest `until` that can be written with a four-digit year: 9999-12-31T23:59:59Z.
pub const MAX_UNTIL_UNIX_SECS: u64 = 253_402_300_799;

const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
const AUDIO_PREFIX: &str = "am";
const DIGEST_PREFIX: &str = "fd";

/// Which of the two `<file-info>` elements an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileInfoKind {
    /// `<file-info type="thumbnail">`.
    Thumbnail,
    /// `<file-info type="file">`.
    File,
}

impl FileInfoKind {
    /// The value of the `type` attribute.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Thumbnail => "thumbnail",
            Self::File => "file",
        }
    }
}

/// Why a `data url` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UrlProblem {
    /// It does not parse as an absolute URL.
    #[error("unparseable: {0}")]
    Unparseable(url::ParseError),
    /// Its scheme is neither `http` nor `https`.
    #[error("scheme {scheme:?} is not http or https")]
    NotHttp {
        /// The scheme found.
        scheme: String,
    },
}

/// Errors from parsing a file-info document.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum FtHttpError {
    /// The document is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("document of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The document's length in bytes.
        len: usize,
        /// [`MAX_DOCUMENT_BYTES`].
        limit: usize,
    },
    /// The document is not valid UTF-8.
    #[error("document is not UTF-8 (first bad byte at {offset})")]
    NotUtf8 {
        /// Byte offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// The XML tokenizer refused the document (syntax, mismatched tags, bad attribute syntax, bad
    /// character reference, namespace misuse).
    #[error("not well-formed XML at byte {offset}: {source}")]
    NotXml {
        /// Byte offset where the problem was found.
        offset: u64,
        /// The tokenizer's error.
        #[source]
        source: quick_xml::Error,
    },
    /// The document has no root element.
    #[error("document has no root element")]
    NoRoot,
    /// The document ends before every element is closed.
    #[error("document ends with {open} element(s) still open")]
    Truncated {
        /// How many elements were still open.
        open: usize,
    },
    /// A second root element after the first one.
    #[error("content after the root element at byte {offset}")]
    TrailingContent {
        /// Byte offset of the extra element.
        offset: u64,
    },
    /// Non-whitespace text outside the root element.
    #[error("text outside the root element at byte {offset}")]
    TextOutsideRoot {
        /// Byte offset of the text.
        offset: u64,
    },
    /// A `<!DOCTYPE>`: refused, so no custom entities can exist.
    #[error("DOCTYPE not allowed (byte {offset})")]
    DoctypeNotAllowed {
        /// Byte offset of the DOCTYPE.
        offset: u64,
    },
    /// An entity reference other than `lt`, `gt`, `amp`, `apos`, `quot` or a character reference.
    #[error("unknown entity &{name}; at byte {offset}")]
    UnknownEntity {
        /// The entity's name.
        name: String,
        /// Byte offset of the reference.
        offset: u64,
    },
    /// A character that XML 1.0 does not allow (a control character, U+FFFE, U+FFFF), written
    /// directly or as a character reference.
    #[error("character U+{code_point:04X} not allowed in XML at byte {offset}")]
    InvalidCharacter {
        /// The character.
        code_point: u32,
        /// Byte offset of the text or attribute holding it.
        offset: u64,
    },
    /// An element or attribute name that is not a well-formed XML name (for example two colons).
    #[error("invalid name {name:?} at byte {offset}")]
    InvalidName {
        /// The name as written.
        name: String,
        /// Byte offset of the element.
        offset: u64,
    },
    /// A namespace declaration whose value holds characters no namespace URI has (`&`, `<`, quotes,
    /// controls): refused because declarations are compared as written.
    #[error("invalid namespace declaration at byte {offset}")]
    InvalidNamespace {
        /// Byte offset of the element declaring it.
        offset: u64,
    },
    /// A prefix used without a declaration.
    #[error("undeclared namespace prefix {prefix:?} at byte {offset}")]
    UnboundPrefix {
        /// The prefix.
        prefix: String,
        /// Byte offset of the element using it.
        offset: u64,
    },
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {limit} at byte {offset}")]
    TooDeep {
        /// [`MAX_DEPTH`].
        limit: usize,
        /// Byte offset of the element that went too deep.
        offset: u64,
    },
    /// More than [`MAX_ELEMENTS`] elements.
    #[error("more than {limit} elements")]
    TooManyElements {
        /// [`MAX_ELEMENTS`].
        limit: usize,
    },
    /// More than [`MAX_ATTRIBUTES`] attributes on one element.
    #[error("more than {limit} attributes on the element at byte {offset}")]
    TooManyAttributes {
        /// [`MAX_ATTRIBUTES`].
        limit: usize,
        /// Byte offset of the element.
        offset: u64,
    },
    /// The root element is not `file`.
    #[error("root element is {found:?}, not \"file\"")]
    WrongRoot {
        /// The root's local name.
        found: String,
    },
    /// The root element `file` is not in [`NAMESPACE`].
    #[error("root element is in namespace {found:?}, not {NAMESPACE}")]
    WrongNamespace {
        /// The root's namespace, `None` when it has none.
        found: Option<String>,
    },
    /// No `<file-info type="file">`.
    #[error("no <file-info type=\"file\">")]
    MissingFileInfo,
    /// Two `<file-info>` of the same type.
    #[error("second <file-info type=\"{}\"> at byte {offset}", kind.as_str())]
    DuplicateFileInfo {
        /// Which type appeared twice.
        kind: FileInfoKind,
        /// Byte offset of the second one.
        offset: u64,
    },
    /// A required child is missing: `file-size`, `content-type` or `data` (with a `url`).
    #[error("<file-info type=\"{}\"> has no <{element}>", kind.as_str())]
    MissingElement {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The missing element's local name.
        element: &'static str,
    },
    /// A known child appears twice in one `<file-info>`.
    #[error("<file-info type=\"{}\"> has a second <{element}> at byte {offset}", kind.as_str())]
    DuplicateElement {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The repeated element's local name.
        element: &'static str,
        /// Byte offset of the second one.
        offset: u64,
    },
    /// An element inside a leaf element that holds only text (such as `file-size`).
    #[error("element inside <{parent}> at byte {offset}")]
    UnexpectedElement {
        /// The leaf element's local name.
        parent: &'static str,
        /// Byte offset of the child element.
        offset: u64,
    },
    /// `file-size` is not a decimal number of bytes that fits in 64 bits.
    #[error("<file-info type=\"{}\"> file-size {value:?} is not a number", kind.as_str())]
    InvalidSize {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The text found (trimmed).
        value: String,
    },
    /// `am:playing-length` is not a decimal number that fits in 64 bits.
    #[error("<file-info type=\"{}\"> playing-length {value:?} is not a number", kind.as_str())]
    InvalidPlayingLength {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The text found (trimmed).
        value: String,
    },
    /// `data url` is not an absolute `http` or `https` URL.
    #[error("<file-info type=\"{}\"> data url {value:?}: {problem}", kind.as_str())]
    BadUrl {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The attribute's value.
        value: String,
        /// What is wrong with it.
        problem: UrlProblem,
    },
    /// `data until` is not an RFC 3339 date-time between 1970 and 9999 (UTC).
    #[error("<file-info type=\"{}\"> until {value:?} is not an RFC 3339 date-time", kind.as_str())]
    BadUntil {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The attribute's value.
        value: String,
    },
    /// `fd:content-digest` is not a feature code `sha-256:<64 lowercase hex>`.
    #[error("<file-info type=\"{}\"> content-digest {value:?}: {reason}", kind.as_str())]
    BadDigest {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The text found (trimmed).
        value: String,
        /// Why the feature code was refused.
        reason: FirstValueError,
    },
    /// `fd:upload` is empty, too long or has characters an upload id never has.
    #[error("<file-info type=\"{}\"> upload {value:?} is not an upload id", kind.as_str())]
    BadUploadId {
        /// The `<file-info>` concerned.
        kind: FileInfoKind,
        /// The text found (trimmed).
        value: String,
    },
}

/// An attribute kept as read: its namespace (resolved, `None` for unprefixed attributes), local
/// name and unescaped value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmlAttribute {
    /// The namespace URI, or `None`.
    pub namespace: Option<String>,
    /// The local name (no prefix).
    pub name: String,
    /// The value, unescaped.
    pub value: String,
}

/// An element this module does not understand, kept with its whole subtree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XmlElement {
    /// The namespace URI, or `None`.
    pub namespace: Option<String>,
    /// The local name (no prefix).
    pub name: String,
    /// Its attributes, in document order, namespace declarations excluded.
    pub attributes: Vec<XmlAttribute>,
    /// Its children, in document order (whitespace-only text dropped).
    pub children: Vec<XmlNode>,
}

/// A child of an [`XmlElement`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XmlNode {
    /// A child element.
    Element(XmlElement),
    /// Text, unescaped (adjacent text, entity references and CDATA sections merged).
    Text(String),
}

/// The `file-disposition` attribute of `<file-info type="file">`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileDisposition {
    /// `render`: show the file inline (audio messages, stickers).
    Render,
    /// `attachment`: offer the file for download.
    Attachment,
    /// Any other value, kept as written (some clients write `attach`).
    Other(String),
}

impl FileDisposition {
    fn parse(value: &str) -> Self {
        match value {
            "render" => Self::Render,
            "attachment" => Self::Attachment,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Render => "render",
            Self::Attachment => "attachment",
            Self::Other(value) => value,
        }
    }
}

/// A `<data url>`: the attribute's text exactly as the peer wrote it (after XML attribute-value
/// normalization), with the `url` crate's reading of it.
///
/// The text is what counts: [`DataUrl::as_str`] returns it, documents are written back with it,
/// and serde uses it. A receiver hands it to [`crate::first_value::verify`], which accepts only a
/// URL already in canonical form, so a spelling the `url` crate would normalize (an upper-case
/// host, a default port, dot segments, surrounding spaces) is refused there instead of being
/// canonicalized first and then verified. [`DataUrl::parsed`] is for reading parts of the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataUrl {
    text: String,
    parsed: Url,
}

impl DataUrl {
    /// An absolute `http` or `https` URL, keeping `text` as given.
    pub fn parse(text: &str) -> Result<Self, UrlProblem> {
        let parsed = Url::parse(text).map_err(UrlProblem::Unparseable)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlProblem::NotHttp {
                scheme: parsed.scheme().to_owned(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            parsed,
        })
    }

    /// The URL as the peer wrote it (for one built from a [`Url`], its serialization).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL as the `url` crate reads it.
    pub fn parsed(&self) -> &Url {
        &self.parsed
    }

    /// Whether the text is already the `url` crate's serialization of itself.
    pub fn is_canonical(&self) -> bool {
        self.text == self.parsed.as_str()
    }
}

impl From<Url> for DataUrl {
    /// The URL with its own serialization as text (its scheme is not checked).
    fn from(url: Url) -> Self {
        Self {
            text: url.as_str().to_owned(),
            parsed: url,
        }
    }
}

impl std::fmt::Display for DataUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for DataUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DataUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One `<file-info>`: the file itself or its thumbnail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// `<file-size>`: the size in bytes.
    pub size: u64,
    /// `<file-name>`: the original file name (the file only; untrusted text, exactly as sent).
    pub name: Option<String>,
    /// `<content-type>`: the MIME type (trimmed).
    pub content_type: String,
    /// `file-disposition` attribute.
    pub disposition: Option<FileDisposition>,
    /// `<data url>`: where to fetch the content (absolute `http` or `https`), kept as written.
    pub url: DataUrl,
    /// `<data until>`: how long the URL is valid, in Unix seconds (UTC).
    pub until: Option<u64>,
    /// `<am:playing-length>`: the length of an audio message, a number as the sender wrote it (the
    /// clients seen in the field write milliseconds).
    pub playing_length: Option<u64>,
    /// `<fd:content-digest>`: this project's extension, the file's feature code.
    pub digest: Option<ContentDigest>,
    /// `<fd:upload>`: this project's extension, the upload still in progress that the first value
    /// names (cut-through delivery).
    pub upload: Option<String>,
    /// Unknown attributes of `<file-info>`.
    pub extra_attributes: Vec<XmlAttribute>,
    /// Unknown attributes of `<data>`.
    pub data_extra_attributes: Vec<XmlAttribute>,
    /// Unknown child elements of `<file-info>`, in document order.
    pub extensions: Vec<XmlElement>,
}

impl FileInfo {
    /// A file-info with the required parts only (`url` a [`Url`] or a [`DataUrl`]).
    pub fn new(size: u64, content_type: impl Into<String>, url: impl Into<DataUrl>) -> Self {
        Self {
            size,
            name: None,
            content_type: content_type.into(),
            disposition: None,
            url: url.into(),
            until: None,
            playing_length: None,
            digest: None,
            upload: None,
            extra_attributes: Vec::new(),
            data_extra_attributes: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// The file-info that carries a first value (claim 3): the signed URL as `data url`, its
    /// expiry as `until`, and the feature code as `fd:content-digest`.
    pub fn for_first_value(
        first_value: &FirstValue,
        size: u64,
        name: Option<String>,
        content_type: impl Into<String>,
    ) -> Self {
        Self {
            name,
            until: Some(first_value.expires.min(MAX_UNTIL_UNIX_SECS)),
            digest: Some(first_value.feature_code),
            ..Self::new(size, content_type, first_value.url.clone())
        }
    }
}

/// A whole `application/vnd.gsma.rcs-ft-http+xml` document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfoDocument {
    /// `<file-info type="file">`.
    pub file: FileInfo,
    /// `<file-info type="thumbnail">`, if any.
    pub thumbnail: Option<FileInfo>,
    /// Unknown attributes of `<file>`.
    pub extra_attributes: Vec<XmlAttribute>,
    /// Unknown child elements of `<file>` (including `<file-info>` of other types), in order.
    pub extensions: Vec<XmlElement>,
}

impl FileInfoDocument {
    /// A document with the file only.
    pub fn new(file: FileInfo) -> Self {
        Self {
            file,
            thumbnail: None,
            extra_attributes: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// Parses a document from UTF-8 bytes or text (a leading byte-order mark is skipped).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(input: &T) -> Result<Self, FtHttpError> {
        let bytes = input.as_ref();
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(FtHttpError::TooLarge {
                len: bytes.len(),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| FtHttpError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        interpret(build_tree(text)?)
    }

    /// Writes the document: an XML declaration, then `<file>` with the thumbnail, the file and the
    /// kept extensions, one element per line. File names, URLs and every other text are escaped;
    /// characters XML cannot carry (controls other than tab, newline, carriage return) are written
    /// as U+FFFD. An `until` past [`MAX_UNTIL_UNIX_SECS`] is written as that instant.
    pub fn to_xml(&self) -> String {
        let infos = || self.thumbnail.iter().chain(std::iter::once(&self.file));
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<file xmlns=\"");
        out.push_str(NAMESPACE);
        out.push('"');
        if infos().any(|info| info.playing_length.is_some()) {
            let _ = write!(out, " xmlns:{AUDIO_PREFIX}=\"{AUDIO_MESSAGE_NAMESPACE}\"");
        }
        if infos().any(|info| info.digest.is_some() || info.upload.is_some()) {
            let _ = write!(out, " xmlns:{DIGEST_PREFIX}=\"{DIGEST_NAMESPACE}\"");
        }
        write_attributes(&mut out, &self.extra_attributes);
        out.push_str(">\n");
        if let Some(thumbnail) = &self.thumbnail {
            write_file_info(&mut out, thumbnail, FileInfoKind::Thumbnail);
        }
        write_file_info(&mut out, &self.file, FileInfoKind::File);
        for extension in &self.extensions {
            write_element(&mut out, extension, Some(NAMESPACE));
            out.push('\n');
        }
        out.push_str("</file>\n");
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing, stage 1: a bounded, namespace-resolved element tree.

/// An element as read, with the offset errors point at.
struct RawElement {
    namespace: Option<String>,
    name: String,
    attributes: Vec<XmlAttribute>,
    children: Vec<RawNode>,
    offset: u64,
}

enum RawNode {
    Element(RawElement),
    Text(String),
}

impl RawElement {
    fn push_text(&mut self, text: &str) {
        if let Some(RawNode::Text(last)) = self.children.last_mut() {
            last.push_str(text);
        } else {
            self.children.push(RawNode::Text(text.to_owned()));
        }
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.name == name
    }

    fn into_public(self) -> XmlElement {
        XmlElement {
            namespace: self.namespace,
            name: self.name,
            attributes: self.attributes,
            children: self
                .children
                .into_iter()
                .filter_map(|child| match child {
                    RawNode::Element(element) => Some(XmlNode::Element(element.into_public())),
                    RawNode::Text(text) if is_blank(&text) => None,
                    RawNode::Text(text) => Some(XmlNode::Text(text)),
                })
                .collect(),
        }
    }
}

fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
}

fn check_chars(text: &str, offset: u64) -> Result<(), FtHttpError> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(FtHttpError::InvalidCharacter {
            code_point: u32::from(c),
            offset,
        }),
        None => Ok(()),
    }
}

/// A well-formed XML local name (an NCName, approximated: letters of any script, digits and
/// `-._` after a letter or `_`).
fn is_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic());
    first_ok && chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '\u{b7}'))
}

fn namespace_of(resolved: ResolveResult<'_>, offset: u64) -> Result<Option<String>, FtHttpError> {
    match resolved {
        ResolveResult::Bound(namespace) => Ok(Some(namespace.into_inner().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(FtHttpError::UnboundPrefix { prefix, offset }),
    }
}

fn build_tree(text: &str) -> Result<RawElement, FtHttpError> {
    let mut reader = NsReader::from_str(text);
    reader
        .resolver_mut()
        .set_max_namespace_bindings(MAX_ATTRIBUTES);
    let mut stack: Vec<RawElement> = Vec::new();
    let mut root: Option<RawElement> = None;
    let mut elements = 0usize;
    // Every event consumes at least one byte of a bounded input, so this loop ends; the explicit
    // cap is a second guard.
    for _ in 0..=text.len() {
        let offset = reader.buffer_position();
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(source) => {
                return Err(FtHttpError::NotXml {
                    offset: reader.error_position(),
                    source,
                });
            }
        };
        let namespace = namespace_of(resolved, offset)?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(FtHttpError::TrailingContent { offset });
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(FtHttpError::TooManyElements {
                        limit: MAX_ELEMENTS,
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(FtHttpError::TooDeep {
                        limit: MAX_DEPTH,
                        offset,
                    });
                }
                let element = read_start(&reader, start, namespace, offset)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(element);
                } else {
                    attach(&mut stack, &mut root, element);
                }
            }
            Event::End(_) => {
                // The tokenizer has checked that the end tag matches the open element.
                if let Some(element) = stack.pop() {
                    attach(&mut stack, &mut root, element);
                }
            }
            Event::Text(text) => {
                let text = text.xml10_content();
                check_chars(&text, offset)?;
                push_text(&mut stack, &text, offset)?;
            }
            Event::CData(data) => {
                let text = data.xml10_content();
                check_chars(&text, offset)?;
                push_text(&mut stack, &text, offset)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*reference {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        name => {
                            return Err(FtHttpError::UnknownEntity {
                                name: name.to_owned(),
                                offset,
                            });
                        }
                    },
                    Err(source) => return Err(FtHttpError::NotXml { offset, source }),
                };
                let mut buffer = [0u8; 4];
                let text = resolved.encode_utf8(&mut buffer);
                check_chars(text, offset)?;
                push_text(&mut stack, text, offset)?;
            }
            Event::DocType(_) => return Err(FtHttpError::DoctypeNotAllowed { offset }),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(FtHttpError::Truncated { open: stack.len() });
                }
                return root.ok_or(FtHttpError::NoRoot);
            }
        }
    }
    Err(FtHttpError::Truncated { open: stack.len() })
}

fn attach(stack: &mut [RawElement], root: &mut Option<RawElement>, element: RawElement) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(RawNode::Element(element)),
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [RawElement], text: &str, offset: u64) -> Result<(), FtHttpError> {
    match stack.last_mut() {
        Some(parent) => parent.push_text(text),
        None if is_blank(text) => {}
        None => return Err(FtHttpError::TextOutsideRoot { offset }),
    }
    Ok(())
}

fn read_start(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    namespace: Option<String>,
    offset: u64,
) -> Result<RawElement, FtHttpError> {
    let (_, local) = reader.resolver().resolve_element(start.name());
    let name = local.into_inner();
    if !is_ncname(name) {
        return Err(FtHttpError::InvalidName {
            name: start.name().into_inner().to_owned(),
            offset,
        });
    }
    let mut attributes = Vec::new();
    for (index, attribute) in start.attributes().enumerate() {
        if index >= MAX_ATTRIBUTES {
            return Err(FtHttpError::TooManyAttributes {
                limit: MAX_ATTRIBUTES,
                offset,
            });
        }
        let attribute = attribute.map_err(|e| FtHttpError::NotXml {
            offset,
            source: e.into(),
        })?;
        if attribute.key.as_namespace_binding().is_some() {
            // Declarations are compared as written by the resolver, so refuse anything that
            // escaping could change.
            let raw = &*attribute.value;
            if raw
                .chars()
                .any(|c| c < ' ' || matches!(c, '&' | '<' | '>' | '"' | '\'') || !is_xml_char(c))
            {
                return Err(FtHttpError::InvalidNamespace { offset });
            }
            continue;
        }
        let (resolved, local) = reader.resolver().resolve_attribute(attribute.key);
        let attribute_namespace = namespace_of(resolved, offset)?;
        let local = local.into_inner();
        if !is_ncname(local) {
            return Err(FtHttpError::InvalidName {
                name: attribute.key.into_inner().to_owned(),
                offset,
            });
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|source| FtHttpError::NotXml { offset, source })?;
        check_chars(&value, offset)?;
        attributes.push(XmlAttribute {
            namespace: attribute_namespace,
            name: local.to_owned(),
            value: value.into_owned(),
        });
    }
    Ok(RawElement {
        namespace,
        name: name.to_owned(),
        attributes,
        children: Vec::new(),
        offset,
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing, stage 2: the tree to the typed document.

fn interpret(root: RawElement) -> Result<FileInfoDocument, FtHttpError> {
    if root.name != "file" {
        return Err(FtHttpError::WrongRoot { found: root.name });
    }
    if root.namespace.as_deref() != Some(NAMESPACE) {
        return Err(FtHttpError::WrongNamespace {
            found: root.namespace,
        });
    }
    let mut file = None;
    let mut thumbnail = None;
    let mut extensions = Vec::new();
    for child in root.children {
        let RawNode::Element(element) = child else {
            continue;
        };
        let kind = if element.is(NAMESPACE, "file-info") {
            match element.attribute("type") {
                Some("file") => Some(FileInfoKind::File),
                Some("thumbnail") => Some(FileInfoKind::Thumbnail),
                _ => None,
            }
        } else {
            None
        };
        let Some(kind) = kind else {
            extensions.push(element.into_public());
            continue;
        };
        let slot = match kind {
            FileInfoKind::File => &mut file,
            FileInfoKind::Thumbnail => &mut thumbnail,
        };
        if slot.is_some() {
            return Err(FtHttpError::DuplicateFileInfo {
                kind,
                offset: element.offset,
            });
        }
        *slot = Some(interpret_file_info(element, kind)?);
    }
    Ok(FileInfoDocument {
        file: file.ok_or(FtHttpError::MissingFileInfo)?,
        thumbnail,
        extra_attributes: root.attributes,
        extensions,
    })
}

/// Stores a known child's value, refusing a second occurrence.
fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    kind: FileInfoKind,
    element: &'static str,
    offset: u64,
) -> Result<(), FtHttpError> {
    if slot.is_some() {
        return Err(FtHttpError::DuplicateElement {
            kind,
            element,
            offset,
        });
    }
    *slot = Some(value);
    Ok(())
}

/// The text of an element that may hold only text.
fn leaf_text(element: &RawElement, name: &'static str) -> Result<String, FtHttpError> {
    let mut text = String::new();
    for child in &element.children {
        match child {
            RawNode::Text(part) => text.push_str(part),
            RawNode::Element(inner) => {
                return Err(FtHttpError::UnexpectedElement {
                    parent: name,
                    offset: inner.offset,
                });
            }
        }
    }
    Ok(text)
}

/// `<file-size>` and `<am:playing-length>`: at most 20 digits (as many as `u64::MAX` has), no sign.
/// Leading zeros count towards the 20, so padding cannot make the parser read a long run.
const XML_DECIMAL: Decimal = Decimal {
    max_digits: 20,
    leading_zeros: true,
};

fn parse_decimal(text: &str) -> Option<u64> {
    XML_DECIMAL.parse(text).ok()
}

struct DataRef {
    url: DataUrl,
    until: Option<u64>,
    extra_attributes: Vec<XmlAttribute>,
}

fn interpret_data(element: RawElement, kind: FileInfoKind) -> Result<DataRef, FtHttpError> {
    let mut url = None;
    let mut until = None;
    let mut extra_attributes = Vec::new();
    for attribute in element.attributes {
        match (attribute.namespace.as_deref(), attribute.name.as_str()) {
            (None, "url") => {
                let parsed =
                    DataUrl::parse(&attribute.value).map_err(|problem| FtHttpError::BadUrl {
                        kind,
                        value: attribute.value.clone(),
                        problem,
                    })?;
                url = Some(parsed);
            }
            (None, "until") => {
                let secs = parse_rfc3339(attribute.value.trim()).ok_or(FtHttpError::BadUntil {
                    kind,
                    value: attribute.value,
                })?;
                until = Some(secs);
            }
            _ => extra_attributes.push(attribute),
        }
    }
    Ok(DataRef {
        // Only called for `<data>` elements that carry a `url`.
        url: url.ok_or(FtHttpError::MissingElement {
            kind,
            element: "data",
        })?,
        until,
        extra_attributes,
    })
}

fn interpret_file_info(element: RawElement, kind: FileInfoKind) -> Result<FileInfo, FtHttpError> {
    let mut disposition = None;
    let mut extra_attributes = Vec::new();
    for attribute in element.attributes {
        match (attribute.namespace.as_deref(), attribute.name.as_str()) {
            (None, "type") => {}
            (None, "file-disposition") => {
                disposition = Some(FileDisposition::parse(&attribute.value))
            }
            _ => extra_attributes.push(attribute),
        }
    }
    let mut size = None;
    let mut name = None;
    let mut content_type = None;
    let mut data = None;
    let mut playing_length = None;
    let mut digest = None;
    let mut upload = None;
    let mut extensions = Vec::new();
    for child in element.children {
        let RawNode::Element(child) = child else {
            continue;
        };
        let offset = child.offset;
        let namespace = child.namespace.as_deref();
        match (namespace, child.name.as_str()) {
            (Some(NAMESPACE), "file-size") => {
                let text = leaf_text(&child, "file-size")?;
                let value = text.trim();
                let parsed = parse_decimal(value).ok_or_else(|| FtHttpError::InvalidSize {
                    kind,
                    value: value.to_owned(),
                })?;
                set_once(&mut size, parsed, kind, "file-size", offset)?;
            }
            (Some(NAMESPACE), "file-name") => {
                let text = leaf_text(&child, "file-name")?;
                set_once(&mut name, text, kind, "file-name", offset)?;
            }
            (Some(NAMESPACE), "content-type") => {
                let text = leaf_text(&child, "content-type")?;
                set_once(
                    &mut content_type,
                    text.trim().to_owned(),
                    kind,
                    "content-type",
                    offset,
                )?;
            }
            (Some(NAMESPACE), "data") if child.attribute("url").is_some() => {
                if data.is_some() {
                    return Err(FtHttpError::DuplicateElement {
                        kind,
                        element: "data",
                        offset,
                    });
                }
                data = Some(interpret_data(child, kind)?);
            }
            (Some(AUDIO_MESSAGE_NAMESPACE), "playing-length") => {
                let text = leaf_text(&child, "playing-length")?;
                let value = text.trim();
                let parsed =
                    parse_decimal(value).ok_or_else(|| FtHttpError::InvalidPlayingLength {
                        kind,
                        value: value.to_owned(),
                    })?;
                set_once(&mut playing_length, parsed, kind, "playing-length", offset)?;
            }
            (Some(DIGEST_NAMESPACE), "content-digest") => {
                let text = leaf_text(&child, "content-digest")?;
                let value = text.trim();
                let parsed = ContentDigest::parse_feature_code(value).map_err(|reason| {
                    FtHttpError::BadDigest {
                        kind,
                        value: value.to_owned(),
                        reason,
                    }
                })?;
                set_once(&mut digest, parsed, kind, "content-digest", offset)?;
            }
            (Some(DIGEST_NAMESPACE), "upload") => {
                let text = leaf_text(&child, "upload")?;
                let value = text.trim();
                if !is_upload_id(value) {
                    return Err(FtHttpError::BadUploadId {
                        kind,
                        value: value.to_owned(),
                    });
                }
                set_once(&mut upload, value.to_owned(), kind, "upload", offset)?;
            }
            _ => extensions.push(child.into_public()),
        }
    }
    let missing = |element| FtHttpError::MissingElement { kind, element };
    let size = size.ok_or_else(|| missing("file-size"))?;
    let content_type = content_type.ok_or_else(|| missing("content-type"))?;
    let data = data.ok_or_else(|| missing("data"))?;
    Ok(FileInfo {
        size,
        name,
        content_type,
        disposition,
        url: data.url,
        until: data.until,
        playing_length,
        digest,
        upload,
        extra_attributes,
        data_extra_attributes: data.extra_attributes,
        extensions,
    })
}

// ---------------------------------------------------------------------------------------------
// RFC 3339 date-times.

fn digits(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    let slice = bytes.get(at..at + len)?;
    slice.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Unix seconds of an RFC 3339 date-time (`2017-04-25T12:17:07Z`, `...07.250+02:00`); fractional
/// seconds are dropped. `None` for anything else, for instants before 1970 or after
/// [`MAX_UNTIL_UNIX_SECS`], and for local times before 1970 whatever their offset.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let fixed = |at: usize, c: u8| b.get(at).is_some_and(|&x| x.eq_ignore_ascii_case(&c));
    if !(fixed(4, b'-') && fixed(7, b'-') && fixed(10, b'T') && fixed(13, b':') && fixed(16, b':'))
    {
        return None;
    }
    let local = UtcDateTime {
        year: i64::from(digits(b, 0, 4)?),
        month: u8::try_from(digits(b, 5, 2)?).ok()?,
        day: u8::try_from(digits(b, 8, 2)?).ok()?,
        hour: u8::try_from(digits(b, 11, 2)?).ok()?,
        minute: u8::try_from(digits(b, 14, 2)?).ok()?,
        second: u8::try_from(digits(b, 17, 2)?).ok()?,
    };
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == at + 6 && fixed(at + 3, b':') => {
            let hours = digits(b, at + 1, 2)?;
            let minutes = digits(b, at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -magnitude } else { magnitude }
        }
        _ => return None,
    };
    let local_secs = i64::try_from(local.to_unix_secs()?).ok()?;
    let utc = u64::try_from(local_secs - offset_secs).ok()?;
    (utc <= MAX_UNTIL_UNIX_SECS).then_some(utc)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (clamped to [`MAX_UNTIL_UNIX_SECS`]).
pub fn format_rfc3339(unix_secs: u64) -> String {
    let t = UtcDateTime::from_unix_secs(unix_secs.min(MAX_UNTIL_UNIX_SECS));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

// ---------------------------------------------------------------------------------------------
// Writing.

fn push_escaped(out: &mut String, text: &str, in_attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            // Attribute-value normalization would turn these into spaces, and end-of-line
            // normalization turns a carriage return into a newline: references survive both.
            '\t' if in_attribute => out.push_str("&#9;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{fffd}'),
        }
    }
}

fn write_attributes(out: &mut String, attributes: &[XmlAttribute]) {
    for (index, attribute) in attributes.iter().enumerate() {
        out.push(' ');
        match attribute.namespace.as_deref() {
            None => {}
            Some(XML_NAMESPACE) => out.push_str("xml:"),
            Some(namespace) => {
                // A prefix of our own per attribute, declared right here: unique in scope because
                // the document never uses prefixes of this form elsewhere.
                let _ = write!(out, "xmlns:n{index}=\"");
                push_escaped(out, namespace, true);
                let _ = write!(out, "\" n{index}:");
            }
        }
        out.push_str(&attribute.name);
        out.push_str("=\"");
        push_escaped(out, &attribute.value, true);
        out.push('"');
    }
}

fn write_element(out: &mut String, element: &XmlElement, default_namespace: Option<&str>) {
    out.push('<');
    out.push_str(&element.name);
    let namespace = element.namespace.as_deref();
    if namespace != default_namespace {
        out.push_str(" xmlns=\"");
        push_escaped(out, namespace.unwrap_or(""), true);
        out.push('"');
    }
    write_attributes(out, &element.attributes);
    if element.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &element.children {
        match child {
            XmlNode::Element(inner) => write_element(out, inner, namespace),
            XmlNode::Text(text) => push_escaped(out, text, false),
        }
    }
    out.push_str("</");
    out.push_str(&element.name);
    out.push('>');
}

fn write_leaf(out: &mut String, prefix: Option<&str>, name: &str, text: &str) {
    out.push('<');
    if let Some(prefix) = prefix {
        out.push_str(prefix);
        out.push(':');
    }
    out.push_str(name);
    out.push('>');
    push_escaped(out, text, false);
    out.push_str("</");
    if let Some(prefix) = prefix {
        out.push_str(prefix);
        out.push(':');
    }
    out.push_str(name);
    out.push_str(">\n");
}

/// Whether `text` can be an upload id: 1 to [`MAX_UPLOAD_ID_BYTES`] URL-unreserved characters or `:`.
fn is_upload_id(text: &str) -> bool {
    (1..=MAX_UPLOAD_ID_BYTES).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':'))
}

fn write_file_info(out: &mut String, info: &FileInfo, kind: FileInfoKind) {
    let _ = write!(out, "<file-info type=\"{}\"", kind.as_str());
    if let Some(disposition) = &info.disposition {
        out.push_str(" file-disposition=\"");
        push_escaped(out, disposition.as_str(), true);
        out.push('"');
    }
    write_attributes(out, &info.extra_attributes);
    out.push_str(">\n");
    write_leaf(out, None, "file-size", &info.size.to_string());
    if let Some(name) = &info.name {
        write_leaf(out, None, "file-name", name);
    }
    write_leaf(out, None, "content-type", &info.content_type);
    if let Some(length) = info.playing_length {
        write_leaf(
            out,
            Some(AUDIO_PREFIX),
            "playing-length",
            &length.to_string(),
        );
    }
    out.push_str("<data url=\"");
    push_escaped(out, info.url.as_str(), true);
    out.push('"');
    if let Some(until) = info.until {
        let _ = write!(out, " until=\"{}\"", format_rfc3339(until));
    }
    write_attributes(out, &info.data_extra_attributes);
    out.push_str("/>\n");
    if let Some(digest) = &info.digest {
        write_leaf(
            out,
            Some(DIGEST_PREFIX),
            "content-digest",
            &digest.feature_code(),
        );
    }
    if let Some(upload) = &info.upload {
        write_leaf(out, Some(DIGEST_PREFIX), "upload", upload);
    }
    for extension in &info.extensions {
        write_element(out, extension, Some(NAMESPACE));
        out.push('\n');
    }
    out.push_str("</file-info>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_value::SigningKey;

    const NS: &str = "xmlns=\"urn:gsma:params:xml:ns:rcs:rcs:fthttp\"";
    const URL: &str = "https://ft.example.com/files/abc?exp=1";

    fn doc(inner: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<file {NS}>{inner}</file>")
    }

    fn file_info(inner: &str) -> String {
        doc(&format!("<file-info type=\"file\">{inner}</file-info>"))
    }

    fn minimal_inner() -> String {
        format!(
            "<file-size>10</file-size><content-type>text/plain</content-type><data url=\"{URL}\" until=\"2030-01-01T00:00:00Z\"/>"
        )
    }

    fn round_trip(document: &FileInfoDocument) {
        let xml = document.to_xml();
        let again = FileInfoDocument::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(&again, document, "{xml}");
        assert_eq!(again.to_xml(), xml);
    }

    #[test]
    fn minimal_document_parses() {
        let parsed = FileInfoDocument::parse(&file_info(&minimal_inner())).expect("parses");
        assert_eq!(parsed.file.size, 10);
        assert_eq!(parsed.file.content_type, "text/plain");
        assert_eq!(parsed.file.url.as_str(), URL);
        assert_eq!(parsed.file.until, parse_rfc3339("2030-01-01T00:00:00Z"));
        assert_eq!(parsed.file.name, None);
        assert!(parsed.thumbnail.is_none());
        round_trip(&parsed);
    }

    #[test]
    fn rfc3339_forms() {
        let base = 1_493_122_627; // 2017-04-25T12:17:07Z
        let cases = [
            ("2017-04-25T12:17:07Z", Some(base)),
            ("2017-04-25t12:17:07z", Some(base)),
            ("2017-04-25T12:17:07.999Z", Some(base)),
            ("2017-04-25T12:17:07.1234567890123Z", Some(base)),
            ("2017-04-25T14:17:07+02:00", Some(base)),
            ("2017-04-25T14:17:07.5+02:00", Some(base)),
            ("2017-04-25T04:47:07-07:30", Some(base)),
            ("2017-04-25T12:17:07+00:00", Some(base)),
            ("2017-04-25T12:17:07-00:00", Some(base)),
            ("2016-12-31T23:59:60Z", Some(1_483_228_800)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("9999-12-31T23:59:59Z", Some(MAX_UNTIL_UNIX_SECS)),
            ("9999-12-31T23:59:59-00:01", None),
            ("1970-01-01T00:00:00+00:01", None),
            ("1969-12-31T23:59:59Z", None),
            ("2017-04-25T12:17:07", None),
            ("2017-04-25 12:17:07Z", None),
            ("2017-04-25T12:17:07.Z", None),
            ("2017-04-25T12:17:07+0200", None),
            ("2017-04-25T12:17:07+24:00", None),
            ("2017-04-25T12:17:07+02:60", None),
            ("2017-02-30T12:17:07Z", None),
            ("2017-04-25T24:00:00Z", None),
            ("2017-04-25T12:60:00Z", None),
            ("2017-4-25T12:17:07Z", None),
            ("+2017-04-25T12:17:07Z", None),
            ("2017-04-25T12:17:07ZZ", None),
            ("2017-04-25T12:17:07+02:00x", None),
            ("", None),
            ("2017-04-25T12:1", None),
            ("２017-04-25T12:17:07Z", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
        assert_eq!(format_rfc3339(base), "2017-04-25T12:17:07Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn untrusted_names_and_urls_are_escaped() {
        let url = Url::parse("https://ft.example.com/f?a=1&b=\"2\"&c=<3>").expect("valid");
        let mut file = FileInfo::new(5, "text/plain; charset=\"utf-8\"", url);
        let name = "<script>&amp;\"quoted\" 'single' ünïcødé 文件\r\n\ttab ]]> end";
        file.name = Some(name.to_owned());
        file.disposition = Some(FileDisposition::Other("a\"b\t".into()));
        let document = FileInfoDocument::new(file);
        let xml = document.to_xml();
        assert!(xml.contains("&lt;script&gt;&amp;amp;"), "{xml}");
        assert!(xml.contains("]]&gt; end"), "{xml}");
        assert!(xml.contains("&#13;"), "{xml}");
        assert!(xml.contains("a=1&amp;b=%222%22&amp;c=%3C3%3E"), "{xml}");
        assert!(xml.contains("file-disposition=\"a&quot;b&#9;\""), "{xml}");
        let parsed = FileInfoDocument::parse(&xml).expect("parses");
        assert_eq!(parsed.file.name.as_deref(), Some(name));
        round_trip(&document);
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced_on_write() {
        let mut file = FileInfo::new(1, "a/b", Url::parse(URL).expect("valid"));
        file.name = Some("bell\u{7}nul\u{0}\u{fffe}".into());
        let xml = FileInfoDocument::new(file).to_xml();
        let parsed = FileInfoDocument::parse(&xml).expect("parses");
        assert_eq!(
            parsed.file.name.as_deref(),
            Some("bell\u{fffd}nul\u{fffd}\u{fffd}")
        );
    }

    #[test]
    fn unknown_content_is_kept() {
        let input = doc(&format!(
            "<file-info type=\"file\" x:flag=\"on\" plain=\"1\" xmlns:x=\"urn:x\">\
               {}\
               <e:branded-url xmlns:e=\"urn:gsma:params:xml:ns:rcs:rcs:up:fthttpext\">https://b.example/?a=1&amp;b=2</e:branded-url>\
               <data localurl=\"http://192.168.0.1/x\"/>\
               <future a=\"b\"><deep xml:lang=\"en\"> mixed <b/>text </deep><!-- c --></future>\
             </file-info>\
             <file-info type=\"sticker\"><file-size>1</file-size></file-info>\
             <file-info><anything/></file-info>\
             <other xmlns=\"\"><child/></other>",
            minimal_inner().replace("/>", " extra=\"kept\"/>")
        ));
        let parsed = FileInfoDocument::parse(&input).expect("parses");
        let file = &parsed.file;
        assert_eq!(
            file.extra_attributes,
            vec![
                XmlAttribute {
                    namespace: Some("urn:x".into()),
                    name: "flag".into(),
                    value: "on".into()
                },
                XmlAttribute {
                    namespace: None,
                    name: "plain".into(),
                    value: "1".into()
                },
            ]
        );
        assert_eq!(
            file.data_extra_attributes,
            vec![XmlAttribute {
                namespace: None,
                name: "extra".into(),
                value: "kept".into()
            }]
        );
        let names: Vec<_> = file.extensions.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["branded-url", "data", "future"]);
        assert_eq!(
            file.extensions[0].children,
            vec![XmlNode::Text("https://b.example/?a=1&b=2".into())]
        );
        let future = &file.extensions[2];
        let XmlNode::Element(deep) = &future.children[0] else {
            panic!("{future:?}");
        };
        assert_eq!(deep.attributes[0].namespace.as_deref(), Some(XML_NAMESPACE));
        assert_eq!(deep.children.len(), 3);
        assert_eq!(deep.children[0], XmlNode::Text(" mixed ".into()));
        let top: Vec<_> = parsed.extensions.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(top, ["file-info", "file-info", "other"]);
        assert_eq!(parsed.extensions[2].namespace, None);
        round_trip(&parsed);
    }

    #[test]
    fn audio_message_and_digest_extension() {
        let digest = ContentDigest::of(b"voice");
        let input = doc(&format!(
            "<file-info type=\"file\" file-disposition=\"render\" xmlns:am=\"{AUDIO_MESSAGE_NAMESPACE}\" xmlns:d=\"{DIGEST_NAMESPACE}\">\
               <file-size>3206</file-size><file-name>voice.amr</file-name><content-type>audio/amr</content-type>\
               <am:playing-length> 2000 </am:playing-length>\
               <data url=\"{URL}\" until=\"2020-10-09T19:25:18+08:00\"/>\
               <d:content-digest>\n  {digest}\n</d:content-digest>\
             </file-info>"
        ));
        let parsed = FileInfoDocument::parse(&input).expect("parses");
        assert_eq!(parsed.file.playing_length, Some(2000));
        assert_eq!(parsed.file.digest, Some(digest));
        assert_eq!(parsed.file.disposition, Some(FileDisposition::Render));
        assert_eq!(parsed.file.until, parse_rfc3339("2020-10-09T11:25:18Z"));
        let xml = parsed.to_xml();
        assert!(xml.contains(&format!("xmlns:am=\"{AUDIO_MESSAGE_NAMESPACE}\"")));
        assert!(xml.contains(&format!("<fd:content-digest>{digest}</fd:content-digest>")));
        assert!(xml.contains("until=\"2020-10-09T11:25:18Z\""));
        round_trip(&parsed);
    }

    #[test]
    fn the_upload_in_progress_round_trips() {
        let digest = ContentDigest::of(b"arriving");
        let input = doc(&format!(
            "<file-info type=\"file\" xmlns:d=\"{DIGEST_NAMESPACE}\">\
               <file-size>9</file-size><content-type>text/plain</content-type>\
               <data url=\"{URL}\"/>\
               <d:content-digest>{digest}</d:content-digest><d:upload> 0f1e:ab-c </d:upload>\
             </file-info>"
        ));
        let parsed = FileInfoDocument::parse(&input).expect("parses");
        assert_eq!(parsed.file.upload.as_deref(), Some("0f1e:ab-c"));
        assert!(parsed.file.extensions.is_empty());
        let xml = parsed.to_xml();
        assert!(xml.contains("<fd:upload>0f1e:ab-c</fd:upload>"), "{xml}");
        round_trip(&parsed);
        let long = "a".repeat(MAX_UPLOAD_ID_BYTES + 1);
        let too_long = input.replace(" 0f1e:ab-c ", &long);
        assert!(matches!(
            FileInfoDocument::parse(&too_long),
            Err(FtHttpError::BadUploadId { .. })
        ));
    }

    #[test]
    fn data_urls_keep_their_text() {
        let url = DataUrl::parse("HTTPS://Edge.Example.com:443/a/./b?x=1").expect("http(s)");
        assert_eq!(url.as_str(), "HTTPS://Edge.Example.com:443/a/./b?x=1");
        assert_eq!(url.parsed().as_str(), "https://edge.example.com/a/b?x=1");
        assert!(!url.is_canonical());
        assert_eq!(url.to_string(), url.as_str());
        let json = serde_json::to_string(&url).expect("serializes");
        assert_eq!(json, "\"HTTPS://Edge.Example.com:443/a/./b?x=1\"");
        assert_eq!(serde_json::from_str::<DataUrl>(&json).ok(), Some(url));
        assert!(serde_json::from_str::<DataUrl>("\"ftp://x/\"").is_err());
        let canonical = DataUrl::from(Url::parse("https://a.example/b").expect("valid"));
        assert!(canonical.is_canonical());
        assert_eq!(canonical.as_str(), "https://a.example/b");
        assert!(matches!(
            DataUrl::parse("/relative"),
            Err(UrlProblem::Unparseable(_))
        ));
        assert_eq!(
            DataUrl::parse("javascript:alert(1)"),
            Err(UrlProblem::NotHttp {
                scheme: "javascript".into()
            })
        );
    }

    #[test]
    fn first_value_travels_in_a_file_info() {
        let key = SigningKey::from_variable(&"k".repeat(40)).expect("long enough");
        let base = Url::parse("https://edge.example.com/ft/").expect("valid");
        let digest = ContentDigest::of(b"file bytes");
        let value = FirstValue::issue(&base, digest, 1_900_000_000, &key);
        let file = FileInfo::for_first_value(&value, 10, Some("a.txt".into()), "text/plain");
        let document = FileInfoDocument::new(file);
        let parsed = FileInfoDocument::parse(&document.to_xml()).expect("parses");
        assert_eq!(parsed, document);
        assert_eq!(parsed.file.until, Some(1_900_000_000));
        let verified = crate::first_value::verify(
            parsed.file.url.as_str(),
            &base,
            &[key],
            crate::time::Timestamp::from_unix_secs(1_800_000_000),
        )
        .expect("verifies");
        assert_eq!(Some(verified.digest), parsed.file.digest);
    }

    #[test]
    fn bad_input_gets_the_specific_error() {
        use FtHttpError as E;
        type Check = fn(&FtHttpError) -> bool;
        let inner = minimal_inner();
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        let deep = format!("{}{}", "<x>".repeat(MAX_DEPTH), "</x>".repeat(MAX_DEPTH));
        let many = "<x/>".repeat(MAX_ELEMENTS);
        let attributes: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}=\"\""))
            .collect();
        let thumbnail = |inner: &str| format!("<file-info type=\"thumbnail\">{inner}</file-info>");
        let file = |inner: &str| format!("<file-info type=\"file\">{inner}</file-info>");
        let am = format!("xmlns:am=\"{AUDIO_MESSAGE_NAMESPACE}\"");
        let fd = format!("xmlns:d=\"{DIGEST_NAMESPACE}\"");
        let upper_digest = ContentDigest::of(b"x").to_hex().to_uppercase();
        let mut count = 0;
        let mut case = |name: &str, input: Vec<u8>, check: Check| {
            count += 1;
            match FileInfoDocument::parse(&input) {
                Ok(parsed) => panic!("{name}: parsed {parsed:?}"),
                Err(error) => assert!(check(&error), "{name}: {error:?}"),
            }
        };
        case("too large", big.into_bytes(), |e| {
            matches!(
                e,
                E::TooLarge {
                    limit: MAX_DOCUMENT_BYTES,
                    ..
                }
            )
        });
        case(
            "not utf-8",
            {
                let mut b = file_info(&inner).into_bytes();
                b.insert(60, 0xff);
                b
            },
            |e| matches!(e, E::NotUtf8 { offset: 60 }),
        );
        case("empty", Vec::new(), |e| matches!(e, E::NoRoot));
        case(
            "only a declaration",
            b"<?xml version=\"1.0\"?>\n".to_vec(),
            |e| matches!(e, E::NoRoot),
        );
        case("plain text", b"hello".to_vec(), |e| {
            matches!(e, E::TextOutsideRoot { offset: 0 })
        });
        case("json", b"{\"file\":1}".to_vec(), |e| {
            matches!(e, E::TextOutsideRoot { .. })
        });
        case("mismatched end", doc("<a></b>").into_bytes(), |e| {
            matches!(e, E::NotXml { .. })
        });
        case(
            "truncated",
            file_info(&inner).as_bytes()[..80].to_vec(),
            |e| matches!(e, E::Truncated { .. } | E::NotXml { .. }),
        );
        case(
            "unclosed root",
            format!("<file {NS}><file-info type=\"file\">{inner}</file-info>").into_bytes(),
            |e| matches!(e, E::Truncated { open: 1 }),
        );
        case(
            "second root",
            format!("{}<file {NS}/>", file_info(&inner)).into_bytes(),
            |e| matches!(e, E::TrailingContent { .. }),
        );
        case(
            "text after root",
            format!("{}x", file_info(&inner)).into_bytes(),
            |e| matches!(e, E::TextOutsideRoot { .. }),
        );
        case(
            "doctype",
            format!("<!DOCTYPE file [<!ENTITY x \"y\">]>{}", file_info(&inner)).into_bytes(),
            |e| matches!(e, E::DoctypeNotAllowed { offset: 0 }),
        );
        case(
            "unknown entity",
            file_info(&inner.replace("text/plain", "&x;")).into_bytes(),
            |e| matches!(e, E::UnknownEntity { name, .. } if name == "x"),
        );
        case(
            "control character",
            file_info(&inner.replace("text/plain", "a\u{1}b")).into_bytes(),
            |e| matches!(e, E::InvalidCharacter { code_point: 1, .. }),
        );
        case(
            "control character reference",
            file_info(&inner.replace("text/plain", "a&#1;b")).into_bytes(),
            |e| matches!(e, E::InvalidCharacter { code_point: 1, .. }),
        );
        case(
            "nul reference",
            file_info(&inner.replace("text/plain", "&#0;")).into_bytes(),
            |e| matches!(e, E::NotXml { .. }),
        );
        case(
            "control in attribute",
            file_info(&inner.replace("until", "x=\"&#2;\" until")).into_bytes(),
            |e| matches!(e, E::InvalidCharacter { code_point: 2, .. }),
        );
        case(
            "two colons",
            doc("<a:b:c xmlns:a=\"urn:a\"/>").into_bytes(),
            |e| matches!(e, E::InvalidName { name, .. } if name == "a:b:c"),
        );
        case("digit name", doc("<1x/>").into_bytes(), |e| {
            matches!(e, E::InvalidName { .. } | E::NotXml { .. })
        });
        case(
            "bad namespace value",
            doc("<a xmlns=\"urn:a&amp;b\"/>").into_bytes(),
            |e| matches!(e, E::InvalidNamespace { .. }),
        );
        case(
            "unbound element prefix",
            doc("<p:a/>").into_bytes(),
            |e| matches!(e, E::UnboundPrefix { prefix, .. } if prefix == "p"),
        );
        case(
            "unbound attribute prefix",
            doc("<a p:b=\"1\"/>").into_bytes(),
            |e| matches!(e, E::UnboundPrefix { prefix, .. } if prefix == "p"),
        );
        case(
            "duplicate attribute",
            file_info(&inner.replace("until", "a=\"1\" a=\"2\" until")).into_bytes(),
            |e| matches!(e, E::NotXml { .. }),
        );
        case("too deep", doc(&deep).into_bytes(), |e| {
            matches!(
                e,
                E::TooDeep {
                    limit: MAX_DEPTH,
                    ..
                }
            )
        });
        case("too many elements", doc(&many).into_bytes(), |e| {
            matches!(
                e,
                E::TooManyElements {
                    limit: MAX_ELEMENTS
                }
            )
        });
        case(
            "too many attributes",
            doc(&format!("<x{attributes}/>")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::TooManyAttributes {
                        limit: MAX_ATTRIBUTES,
                        ..
                    }
                )
            },
        );
        case(
            "wrong root",
            format!("<files {NS}/>").into_bytes(),
            |e| matches!(e, E::WrongRoot { found } if found == "files"),
        );
        case(
            "no namespace",
            b"<file><file-info type=\"file\"/></file>".to_vec(),
            |e| matches!(e, E::WrongNamespace { found: None }),
        );
        case(
            "other namespace",
            b"<file xmlns=\"urn:gsma:params:xml:ns:rcs:rcs:fthttp2\"/>".to_vec(),
            |e| matches!(e, E::WrongNamespace { found: Some(ns) } if ns.ends_with("fthttp2")),
        );
        case("empty root", format!("<file {NS}/>").into_bytes(), |e| {
            matches!(e, E::MissingFileInfo)
        });
        case(
            "thumbnail only",
            doc(&thumbnail(&inner)).into_bytes(),
            |e| matches!(e, E::MissingFileInfo),
        );
        case(
            "file-info in another namespace",
            doc(&format!(
                "<file-info xmlns=\"urn:x\" type=\"file\">{inner}</file-info>"
            ))
            .into_bytes(),
            |e| matches!(e, E::MissingFileInfo),
        );
        case(
            "duplicate file",
            doc(&(file(&inner) + &file(&inner))).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::DuplicateFileInfo {
                        kind: FileInfoKind::File,
                        ..
                    }
                )
            },
        );
        case(
            "duplicate thumbnail",
            doc(&(thumbnail(&inner) + &thumbnail(&inner) + &file(&inner))).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::DuplicateFileInfo {
                        kind: FileInfoKind::Thumbnail,
                        ..
                    }
                )
            },
        );
        case(
            "missing size",
            file_info(&inner.replace("<file-size>10</file-size>", "")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::MissingElement {
                        kind: FileInfoKind::File,
                        element: "file-size"
                    }
                )
            },
        );
        case(
            "missing content type",
            file_info(&inner.replace("<content-type>text/plain</content-type>", "")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::MissingElement {
                        element: "content-type",
                        ..
                    }
                )
            },
        );
        case(
            "missing data",
            file_info("<file-size>1</file-size><content-type>a/b</content-type>").into_bytes(),
            |e| {
                matches!(
                    e,
                    E::MissingElement {
                        element: "data",
                        ..
                    }
                )
            },
        );
        case(
            "data without url",
            file_info(&inner.replace(" url=", " localurl=")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::MissingElement {
                        element: "data",
                        ..
                    }
                )
            },
        );
        case(
            "empty size",
            file_info(&inner.replace("<file-size>10</file-size>", "<file-size/>")).into_bytes(),
            |e| matches!(e, E::InvalidSize { value, .. } if value.is_empty()),
        );
        case(
            "negative size",
            file_info(&inner.replace(">10<", ">-10<")).into_bytes(),
            |e| matches!(e, E::InvalidSize { value, .. } if value == "-10"),
        );
        case(
            "plus size",
            file_info(&inner.replace(">10<", ">+10<")).into_bytes(),
            |e| matches!(e, E::InvalidSize { .. }),
        );
        case(
            "huge size",
            file_info(&inner.replace(">10<", ">18446744073709551616<")).into_bytes(),
            |e| matches!(e, E::InvalidSize { .. }),
        );
        case(
            "word size",
            file_info(&inner.replace(">10<", ">ten<")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::InvalidSize {
                        kind: FileInfoKind::File,
                        ..
                    }
                )
            },
        );
        case(
            "element in size",
            file_info(&inner.replace(">10<", ">1<b/>0<")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::UnexpectedElement {
                        parent: "file-size",
                        ..
                    }
                )
            },
        );
        case(
            "thumbnail size",
            doc(&(thumbnail(&inner.replace(">10<", ">x<")) + &file(&inner))).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::InvalidSize {
                        kind: FileInfoKind::Thumbnail,
                        ..
                    }
                )
            },
        );
        case(
            "duplicate size",
            file_info(&format!("<file-size>1</file-size>{inner}")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::DuplicateElement {
                        element: "file-size",
                        ..
                    }
                )
            },
        );
        case(
            "duplicate name",
            file_info(&format!(
                "<file-name>a</file-name><file-name>b</file-name>{inner}"
            ))
            .into_bytes(),
            |e| {
                matches!(
                    e,
                    E::DuplicateElement {
                        element: "file-name",
                        ..
                    }
                )
            },
        );
        case(
            "duplicate data",
            file_info(&format!("{inner}<data url=\"{URL}\"/>")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::DuplicateElement {
                        element: "data",
                        ..
                    }
                )
            },
        );
        case(
            "relative url",
            file_info(&inner.replace(URL, "/files/abc")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::BadUrl {
                        problem: UrlProblem::Unparseable(_),
                        ..
                    }
                )
            },
        );
        case(
            "empty url",
            file_info(&inner.replace(URL, "")).into_bytes(),
            |e| {
                matches!(
                    e,
                    E::BadUrl {
                        problem: UrlProblem::Unparseable(_),
                        ..
                    }
                )
            },
        );
        case(
            "javascript url",
            file_info(&inner.replace(URL, "javascript:alert(1)")).into_bytes(),
            |e| matches!(e, E::BadUrl { problem: UrlProblem::NotHttp { scheme }, .. } if scheme == "javascript"),
        );
        case(
            "bad host",
            file_info(&inner.replace(URL, "https://exa mple.com/")).into_bytes(),
            |e| matches!(e, E::BadUrl { .. }),
        );
        case(
            "bad until",
            file_info(&inner.replace("2030-01-01T00:00:00Z", "tomorrow")).into_bytes(),
            |e| matches!(e, E::BadUntil { value, .. } if value == "tomorrow"),
        );
        case(
            "until without zone",
            file_info(&inner.replace("00:00:00Z", "00:00:00")).into_bytes(),
            |e| matches!(e, E::BadUntil { .. }),
        );
        case(
            "bad playing length",
            file_info(&format!(
                "<am:playing-length {am}>1.5</am:playing-length>{inner}"
            ))
            .into_bytes(),
            |e| matches!(e, E::InvalidPlayingLength { value, .. } if value == "1.5"),
        );
        case(
            "bad digest",
            file_info(&format!(
                "<d:content-digest {fd}>md5:00</d:content-digest>{inner}"
            ))
            .into_bytes(),
            |e| {
                matches!(
                    e,
                    E::BadDigest {
                        reason: FirstValueError::UnknownDigestAlgorithm,
                        ..
                    }
                )
            },
        );
        case(
            "upper-case digest",
            file_info(&format!(
                "<d:content-digest {fd}>sha-256:{upper_digest}</d:content-digest>{inner}"
            ))
            .into_bytes(),
            |e| {
                matches!(
                    e,
                    E::BadDigest {
                        reason: FirstValueError::BadDigestHex { .. },
                        ..
                    }
                )
            },
        );
        case(
            "upload id with a slash",
            file_info(&format!("<d:upload {fd}>up/1</d:upload>{inner}")).into_bytes(),
            |e| matches!(e, E::BadUploadId { value, .. } if value == "up/1"),
        );
        case(
            "empty upload id",
            file_info(&format!("<d:upload {fd}> </d:upload>{inner}")).into_bytes(),
            |e| matches!(e, E::BadUploadId { value, .. } if value.is_empty()),
        );
        case(
            "two upload ids",
            file_info(&format!(
                "<d:upload {fd}>a</d:upload><d:upload {fd}>b</d:upload>{inner}"
            ))
            .into_bytes(),
            |e| {
                matches!(
                    e,
                    E::DuplicateElement {
                        element: "upload",
                        ..
                    }
                )
            },
        );
        assert_eq!(count, 60);
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let xml = file_info(&format!(
            "{}<file-name>n&amp;me</file-name>",
            minimal_inner()
        ));
        for end in 0..xml.len() {
            if let Some(cut) = xml.get(..end) {
                assert!(FileInfoDocument::parse(cut).is_err(), "{cut}");
            }
        }
        assert!(FileInfoDocument::parse(&xml).is_ok());
    }

    #[test]
    fn byte_order_mark_and_bytes_input() {
        let xml = format!("\u{feff}{}", file_info(&minimal_inner()));
        assert!(FileInfoDocument::parse(xml.as_bytes()).is_ok());
        assert!(FileInfoDocument::parse(&xml).is_ok());
        assert!(FileInfoDocument::parse(xml.as_str()).is_ok());
    }

    #[test]
    fn document_state_survives_serde() {
        let parsed = FileInfoDocument::parse(&file_info(&minimal_inner())).expect("parses");
        let json = serde_json::to_string(&parsed).expect("serializes");
        let back: FileInfoDocument = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, parsed);
    }
}
