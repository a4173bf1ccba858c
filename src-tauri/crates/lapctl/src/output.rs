//! Where lapctl's output goes. A reader that went away (`lapctl status | head -1`) is not an
//! error: the rest of the output is dropped and the command ends with the code it would have
//! returned anyway (so `activate --all | head -1` still says 3 when a product failed).

use std::io::{self, Write};

/// A writer that turns a closed pipe into a sink, once and for good.
#[derive(Debug)]
pub struct Quiet<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Quiet<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }

    fn absorb<T>(&mut self, result: io::Result<T>, otherwise: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(otherwise)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for Quiet<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.absorb(result, ())
    }
}

/// `value` as pretty JSON and a newline: what every `--json` prints.
pub fn json(out: &mut dyn Write, value: &impl serde::Serialize) -> Result<(), crate::CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::CliError::Runtime(format!("JSON: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe whose reader leaves after `room` bytes.
    struct Pipe {
        room: usize,
        seen: Vec<u8>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.seen.len() + buf.len() > self.room {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.seen.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_drops_the_rest_and_other_errors_stay_errors() {
        let mut out = Quiet::new(Pipe {
            room: 6,
            seen: Vec::new(),
        });
        writeln!(out, "first").expect("fits");
        writeln!(out, "second").expect("the closed pipe is absorbed");
        writeln!(out, "x").expect("and stays closed");
        out.flush().expect("flush");
        assert_eq!(out.inner.seen, b"first\n");

        let mut full = Quiet::new(Full);
        assert!(writeln!(full, "no space").is_err());
    }
}
