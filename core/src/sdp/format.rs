//! How a parsed section is written back byte for byte: the order its lines came in, and the
//! original text of typed lines whose canonical form would differ.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::attribute::Attribute;
use super::{Bandwidth, Connection, Origin, Timing};

/// Line order and original spellings recorded by the parser for one section (the session part or
/// one media section), so that writing the description back reproduces its input.
///
/// This is presentation, not content: every `Formatting` compares equal to every other, so two
/// descriptions that differ only in line order or spelling compare equal. A description built in
/// code has an empty `Formatting` and is written in the canonical RFC 4566 order; reset it with
/// `Formatting::default()` to get the canonical form of a parsed one.
///
/// When fields are edited after parsing, lines are still written in recorded order as far as the
/// fields allow; new items go after the last recorded line of their kind, or at their canonical
/// place if the section had none; an original spelling is used only while its typed value is
/// unchanged.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Formatting {
    pub(crate) order: Vec<LineKind>,
    pub(crate) originals: Vec<Original>,
}

impl PartialEq for Formatting {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Formatting {}

/// The kinds of lines a section holds after its first line, each kept in its own list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LineKind {
    Connection,
    Bandwidth,
    Time,
    Attribute,
    Other,
}

impl LineKind {
    const COUNT: usize = 5;

    const fn index(self) -> usize {
        self as usize
    }
}

/// The original text (after `x=`) of a typed line, valid while the typed value still equals `value`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Original {
    pub(crate) value: Typed,
    pub(crate) text: String,
}

/// A snapshot of a typed line, with its index in its list where the section may hold several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Typed {
    Origin(Origin),
    MediaLine(MediaLine),
    Connection(Connection),
    Bandwidth(usize, Bandwidth),
    Time(usize, Timing),
    Attribute(usize, Attribute),
}

/// The fields of an `m=` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MediaLine {
    pub(crate) media: String,
    pub(crate) port: u16,
    pub(crate) port_count: Option<u16>,
    pub(crate) proto: String,
    pub(crate) formats: Vec<String>,
}

impl Formatting {
    /// The text to write for a typed line: its original spelling if recorded and still current,
    /// otherwise the canonical text.
    pub(crate) fn text_for(
        &self,
        is_it: impl Fn(&Typed) -> bool,
        canonical: impl FnOnce() -> String,
    ) -> String {
        self.originals
            .iter()
            .find(|original| is_it(&original.value))
            .map(|original| original.text.clone())
            .unwrap_or_else(canonical)
    }

    /// Records the original text of a typed line if it differs from the canonical text.
    pub(crate) fn remember(&mut self, value: Typed, original: &str, canonical: &str) {
        if original != canonical {
            self.originals.push(Original {
                value,
                text: original.to_owned(),
            });
        }
    }
}

/// One line ready to be written: its kind, its canonical rank within the section, and its text
/// (`x=value`, without the line ending).
pub(crate) struct Item {
    pub(crate) kind: LineKind,
    pub(crate) rank: u8,
    pub(crate) line: String,
}

/// Writes the lines of one section (after its first line) in the recorded order.
///
/// Items of a kind the recorded order never mentions (everything, for a section built in code) are
/// slotted in by canonical rank; items of a recorded kind beyond the recorded count follow the last
/// recorded line of that kind.
pub(crate) fn write_section(out: &mut String, order: &[LineKind], items: Vec<Item>) {
    let mut queues: [VecDeque<Item>; LineKind::COUNT] = Default::default();
    let mut last = [None; LineKind::COUNT];
    for (i, kind) in order.iter().enumerate() {
        if let Some(slot) = last.get_mut(kind.index()) {
            *slot = Some(i);
        }
    }
    let mut unplaced = Vec::new();
    for item in items {
        let recorded = last.get(item.kind.index()).copied().flatten().is_some();
        match queues.get_mut(item.kind.index()) {
            Some(queue) if recorded => queue.push_back(item),
            _ => unplaced.push(item),
        }
    }
    // Stable: items of one kind keep their list order.
    unplaced.sort_by_key(|item| item.rank);
    let mut unplaced = unplaced.into_iter().peekable();
    for (i, kind) in order.iter().enumerate() {
        let Some(queue) = queues.get_mut(kind.index()) else {
            continue;
        };
        if let Some(item) = queue.pop_front() {
            while let Some(earlier) = unplaced.next_if(|u| u.rank < item.rank) {
                push_line(out, &earlier.line);
            }
            push_line(out, &item.line);
        }
        if last.get(kind.index()).copied().flatten() == Some(i) {
            for item in queue.drain(..) {
                push_line(out, &item.line);
            }
        }
    }
    for item in unplaced {
        push_line(out, &item.line);
    }
}

/// Appends one line and its CRLF. Field text never breaks a line: every control character but HTAB
/// (which the parser accepts) is written as U+FFFD, so a description built or edited in code with a
/// CR or LF in a field cannot add lines of its own. Parsed fields never hold such characters, so
/// this changes nothing for them; the builders ([`super::FileTransferOffer::build`],
/// [`super::answer`]) refuse such fields outright.
pub(crate) fn push_line(out: &mut String, line: &str) {
    let is_breaking = |c: char| c.is_ascii_control() && c != '\t';
    if line.contains(is_breaking) {
        out.extend(line.chars().map(|c| {
            if is_breaking(c) {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        }));
    } else {
        out.push_str(line);
    }
    out.push_str("\r\n");
}
