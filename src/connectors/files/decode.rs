//! Turns an export file into UTF-8 bytes: strips a UTF-8 BOM, transcodes UTF-16 (LE/BE,
//! with BOM) and passes anything else through unchanged, so that invalid UTF-8 surfaces as
//! a per-row error instead of failing the file.

use encoding_rs_io::DecodeReaderBytesBuilder;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Opens `path` as a buffered UTF-8 stream. `bytes_read`, when given, follows how much
/// of the file has been read (for a progress bar).
pub fn open_utf8(
    path: &Path,
    bytes_read: Option<Arc<AtomicU64>>,
) -> io::Result<BufReader<Box<dyn Read + Send>>> {
    let file = File::open(path)?;
    Ok(match bytes_read {
        Some(counter) => utf8_reader(Box::new(ByteCounter {
            inner: file,
            counter,
        })),
        None => utf8_reader(Box::new(file)),
    })
}

struct ByteCounter<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for ByteCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub fn utf8_reader(inner: Box<dyn Read + Send>) -> BufReader<Box<dyn Read + Send>> {
    let decoded = DecodeReaderBytesBuilder::new()
        .bom_sniffing(true)
        .strip_bom(true)
        .utf8_passthru(true)
        .build(inner);
    BufReader::with_capacity(256 * 1024, Box::new(decoded))
}

/// A stream whose first bytes were read ahead and are given back first.
pub type Replayed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Reads the start of a stream, up to the end of its first line outside quotes (or 64 KiB),
/// and returns it with a reader that yields the whole stream again.
pub fn peek_first_line<R: Read>(mut reader: R) -> io::Result<(Vec<u8>, Replayed<R>)> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut quoted = false;
    let mut scanned = 0;
    'outer: loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
        for &b in &head[scanned..] {
            match b {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => break 'outer,
                _ => {}
            }
        }
        scanned = head.len();
        if head.len() >= 64 * 1024 {
            break;
        }
    }
    Ok((head.clone(), io::Cursor::new(head).chain(reader)))
}

/// Picks the delimiter of a CSV file from its header line: the most frequent of `,`, `;`,
/// tab and `|` outside quotes; `,` when none occurs.
pub fn sniff_delimiter(buf: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let cands = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in buf {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = cands.iter().position(|c| *c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let (best, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        .expect("four candidates");
    if *n == 0 { b',' } else { cands[best] }
}

/// Counts the newlines read through it, so a streaming parser can tell which line it is on.
/// The count is shared: keep a clone of [`LineCounter::count`] to read it while a parser
/// owns the reader.
pub struct LineCounter<R> {
    inner: R,
    newlines: Rc<Cell<u64>>,
}

impl<R> LineCounter<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            newlines: Rc::new(Cell::new(0)),
        }
    }

    pub fn count(&self) -> Rc<Cell<u64>> {
        self.newlines.clone()
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let seen = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.newlines.set(self.newlines.get() + seen);
        Ok(n)
    }
}

/// Remembers where newlines are in a stream, so that a record's byte offset can be turned
/// into its physical line. (The csv crate's own line count is one short on CRLF files: it
/// reports a record as starting at the `\n` of the line before.)
pub struct NewlineIndex<R> {
    inner: R,
    state: Rc<RefCell<NewlineState>>,
}

#[derive(Debug, Default)]
pub struct NewlineState {
    pending: VecDeque<u64>,
    read: u64,
    passed: u64,
}

impl NewlineState {
    /// The 1-based line of the record that starts at byte `offset` (offsets must not
    /// decrease between calls). A record that "starts" on a newline starts after it.
    pub fn line_at(&mut self, offset: u64) -> u64 {
        while self.pending.front().is_some_and(|o| *o <= offset) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl<R> NewlineIndex<R> {
    pub fn new(inner: R) -> (Self, Rc<RefCell<NewlineState>>) {
        let state = Rc::new(RefCell::new(NewlineState::default()));
        (
            Self {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut st = self.state.borrow_mut();
        let base = st.read;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                st.pending.push_back(base + i as u64);
            }
        }
        st.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>) -> String {
        let mut s = String::new();
        utf8_reader(Box::new(io::Cursor::new(bytes)))
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn boms_and_utf16() {
        assert_eq!(read_all(b"\xEF\xBB\xBFId,x\n".to_vec()), "Id,x\n");
        let mut le = vec![0xFF, 0xFE];
        for u in "Id;Ö\n".encode_utf16() {
            le.extend(u.to_le_bytes());
        }
        assert_eq!(read_all(le), "Id;Ö\n");
        let mut be = vec![0xFE, 0xFF];
        for u in "Id\tß\n".encode_utf16() {
            be.extend(u.to_be_bytes());
        }
        assert_eq!(read_all(be), "Id\tß\n");
        assert_eq!(read_all("plain ü".into()), "plain ü");
    }

    #[test]
    fn the_first_line_is_peeked_whole_even_from_a_trickling_reader() {
        struct Trickle(Vec<u8>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = (self.0.len() - self.1).min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let (head, mut rest) =
            peek_first_line(Trickle(b"a;b;\"c\nd\";e\n1;2;3;4\n".to_vec(), 0)).unwrap();
        assert_eq!(sniff_delimiter(&head), b';');
        let mut all = String::new();
        rest.read_to_string(&mut all).unwrap();
        assert_eq!(all, "a;b;\"c\nd\";e\n1;2;3;4\n");
    }

    #[test]
    fn delimiters() {
        let sniff = |s: &str| sniff_delimiter(s.as_bytes());
        assert_eq!(sniff("a;b;c\n1,5;2,5;3\n"), b';');
        assert_eq!(sniff("a,b,c\n"), b',');
        assert_eq!(sniff("\"a,b\";c;d\n"), b';');
        assert_eq!(sniff("a\tb\n"), b'\t');
        assert_eq!(sniff("single\n"), b',');
    }
}
