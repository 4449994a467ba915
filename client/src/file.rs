//! Files on disk: hashing a file to send, reading one chunk of it, and writing a received file at the
//! offsets its chunks name while its SHA-256 advances, without ever holding the whole file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::Error;

/// Bytes read from disk at a time when hashing.
const BLOCK: usize = 64 * 1024;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// The SHA-256 of the first `len` bytes of `file`, read in blocks.
fn hash_prefix(file: &mut File, path: &Path, len: u64) -> Result<Sha256, Error> {
    file.seek(SeekFrom::Start(0)).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; BLOCK];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(BLOCK).min(BLOCK);
        file.read_exact(&mut block[..want]).map_err(io(path))?;
        hasher.update(&block[..want]);
        left -= want as u64;
    }
    Ok(hasher)
}

/// The size and SHA-256 of the file at `path`.
pub fn sha256_of(path: &Path) -> Result<(u64, [u8; 32]), Error> {
    let mut file = File::open(path).map_err(io(path))?;
    let size = file.metadata().map_err(io(path))?.len();
    let hasher = hash_prefix(&mut file, path, size)?;
    Ok((size, hasher.finalize().into()))
}

/// A file being sent: reads the ranges the agent asks for.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    file: File,
}

impl SourceFile {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Ok(Self {
            path: path.to_owned(),
            file: File::open(path).map_err(io(path))?,
        })
    }

    /// The bytes `start..end` of the file.
    pub fn read(&mut self, start: u64, end: u64) -> Result<Bytes, Error> {
        let len = usize::try_from(end.saturating_sub(start)).unwrap_or(0);
        let mut buffer = BytesMut::zeroed(len);
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(io(&self.path))?;
        self.file.read_exact(&mut buffer).map_err(io(&self.path))?;
        Ok(buffer.freeze())
    }
}

/// A file being received: chunks are written where they belong, and the SHA-256 advances over the
/// bytes written in order. A chunk that leaves a gap (which one connection never does) makes
/// [`finish`](Self::finish) hash the file again from disk.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    file: File,
    hasher: Sha256,
    /// Every byte before this one is hashed.
    hashed: u64,
    /// Whether a write skipped past `hashed`.
    gap: bool,
}

impl OutputFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io(path))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            hasher: Sha256::new(),
            hashed: 0,
            gap: false,
        })
    }

    /// Opens `path` to go on after its first `keep` bytes (or fewer, if the file is shorter):
    /// hashes them and drops anything after them. Returns the file and how many bytes it kept.
    pub fn resume(path: &Path, keep: u64) -> Result<(Self, u64), Error> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        let kept = file.metadata().map_err(io(path))?.len().min(keep);
        file.set_len(kept).map_err(io(path))?;
        let hasher = hash_prefix(&mut file, path, kept)?;
        let output = Self {
            path: path.to_owned(),
            file,
            hasher,
            hashed: kept,
            gap: false,
        };
        Ok((output, kept))
    }

    /// The path written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` at `offset`.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(io(&self.path))?;
        self.file.write_all(data).map_err(io(&self.path))?;
        let end = offset.saturating_add(data.len() as u64);
        if offset <= self.hashed && end > self.hashed {
            let skip = usize::try_from(self.hashed - offset).unwrap_or(usize::MAX);
            self.hasher.update(&data[skip..]);
            self.hashed = end;
        } else if offset > self.hashed {
            self.gap = true;
        }
        Ok(())
    }

    /// The SHA-256 of the first `size` bytes written, from the running hash when every byte came
    /// in order, else read back from disk.
    pub fn finish(&mut self, size: u64) -> Result<[u8; 32], Error> {
        self.file.flush().map_err(io(&self.path))?;
        if !self.gap && self.hashed == size {
            return Ok(self.hasher.clone().finalize().into());
        }
        let hasher = hash_prefix(&mut self.file, &self.path, size)?;
        Ok(hasher.finalize().into())
    }
}

/// A file name from an untrusted offer, safe to join to a directory: no separators, no `..`, no
/// control characters, not empty.
pub fn safe_name(name: Option<&str>, fallback: &str) -> String {
    let cleaned: String = name
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

/// `dir/name`, or `dir/name (1)`, `dir/name (2)`... the first that does not exist.
pub fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (1u32..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|path| !path.exists())
        .unwrap_or(first)
}

/// A media type for a file name, from its extension.
pub fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("json") => "application/json",
        Some("zip") => "application/zip",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rcs-client-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn chunks_in_order_are_hashed_as_they_are_written() {
        let dir = temp_dir("order");
        let path = dir.join("out.bin");
        let data = data(200_000);
        let mut out = OutputFile::create(&path).unwrap();
        for (i, chunk) in data.chunks(65_536).enumerate() {
            out.write_at(i as u64 * 65_536, chunk).unwrap();
        }
        // A retransmitted chunk changes nothing.
        out.write_at(65_536, &data[65_536..131_072]).unwrap();
        let digest = out.finish(data.len() as u64).unwrap();
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(std::fs::read(&path).unwrap(), data);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn chunks_out_of_order_land_at_their_offsets_and_are_hashed_from_disk() {
        let dir = temp_dir("gap");
        let path = dir.join("out.bin");
        let data = data(100_000);
        let mut out = OutputFile::create(&path).unwrap();
        out.write_at(60_000, &data[60_000..]).unwrap();
        out.write_at(0, &data[..60_000]).unwrap();
        let digest = out.finish(data.len() as u64).unwrap();
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(std::fs::read(&path).unwrap(), data);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn resuming_keeps_and_hashes_the_prefix_and_drops_the_rest() {
        let dir = temp_dir("resume");
        let path = dir.join("out.part");
        let data = data(50_000);
        std::fs::write(&path, &data[..30_000]).unwrap();
        let (mut out, kept) = OutputFile::resume(&path, 20_000).unwrap();
        assert_eq!(kept, 20_000);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20_000);
        out.write_at(20_000, &data[20_000..]).unwrap();
        let digest = out.finish(50_000).unwrap();
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        // Asking for more than the file holds keeps what is there.
        let (_, kept) = OutputFile::resume(&path, 1 << 30).unwrap();
        assert_eq!(kept, 50_000);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_source_file_reads_the_ranges_asked_for() {
        let dir = temp_dir("source");
        let path = dir.join("in.bin");
        let data = data(10_000);
        std::fs::write(&path, &data).unwrap();
        let mut source = SourceFile::open(&path).unwrap();
        assert_eq!(&source.read(9_000, 10_000).unwrap()[..], &data[9_000..]);
        assert_eq!(&source.read(0, 0).unwrap()[..], b"");
        assert!(source.read(9_000, 10_001).is_err(), "past the end");
        let (size, digest) = sha256_of(&path).unwrap();
        assert_eq!(size, 10_000);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn offered_names_cannot_leave_the_directory() {
        let cases = [
            (Some("photo.jpg"), "photo.jpg"),
            (Some("../../etc/passwd"), "_.._etc_passwd"),
            (Some("/abs/path"), "_abs_path"),
            (Some("..."), "fallback"),
            (Some("a\r\nb"), "a__b"),
            (Some("  "), "fallback"),
            (None, "fallback"),
        ];
        for (name, expected) in cases {
            assert_eq!(safe_name(name, "fallback"), expected, "{name:?}");
        }
    }

    #[test]
    fn a_taken_name_gets_a_number() {
        let dir = temp_dir("free");
        assert_eq!(free_path(&dir, "a.txt"), dir.join("a.txt"));
        std::fs::write(dir.join("a.txt"), b"").unwrap();
        std::fs::write(dir.join("a (1).txt"), b"").unwrap();
        assert_eq!(free_path(&dir, "a.txt"), dir.join("a (2).txt"));
        std::fs::write(dir.join("README"), b"").unwrap();
        assert_eq!(free_path(&dir, "README"), dir.join("README (1)"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
